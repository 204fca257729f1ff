"""Server-rendered pages of the projects app: the expert's work pages and the lab console."""
