"""The capability library: a project's way of labelling, saved to be built on again."""
