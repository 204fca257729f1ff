// The site's only script (no inline scripts: the CSP forbids them). Progressive: every form
// also works without it; this adds keyboard labeling, the lease countdown, time on task,
// paste share, the correction diff and the rubric editor's add/reorder buttons.
"use strict";

(function () {
  function initTask(form) {
    const started = Date.now();
    let pasted = 0;
    const fieldsets = Array.from(form.querySelectorAll("fieldset.dimension"));
    let active = 0;

    function answered(fieldset) {
      return fieldset.querySelector("input:checked") !== null;
    }
    function setActive(index) {
      if (!fieldsets.length) return;
      active = Math.max(0, Math.min(index, fieldsets.length - 1));
      fieldsets.forEach((f, i) => f.classList.toggle("active", i === active));
      const legend = document.getElementById("active-dimension");
      if (legend) legend.textContent = fieldsets[active].dataset.title || "";
    }
    function nextUnanswered() {
      for (let i = 0; i < fieldsets.length; i++) {
        const j = (active + i) % fieldsets.length;
        if (!answered(fieldsets[j])) return j;
      }
      return active;
    }
    fieldsets.forEach((fieldset, index) => {
      fieldset.addEventListener("focusin", () => setActive(index));
      fieldset.addEventListener("change", () => setActive(nextUnanswered()));
    });
    setActive(0);

    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const target = event.target;
      const typing = target instanceof HTMLTextAreaElement ||
        (target instanceof HTMLInputElement && ["text", "number"].includes(target.type));
      if (typing) return;
      const key = event.key.toLowerCase();
      const preference = { a: "a", b: "b", t: "tie" }[key];
      if (preference) {
        const radio = form.querySelector(`input[name="preference"][value="${preference}"]`);
        if (radio) { radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); event.preventDefault(); }
        return;
      }
      if (/^[0-9]$/.test(key) && fieldsets.length) {
        const fieldset = fieldsets[active];
        const radio = fieldset.querySelector(`input[type="radio"][data-key="${key}"]`);
        if (radio) {
          radio.checked = true;
          radio.focus();
          setActive(nextUnanswered());
          event.preventDefault();
        }
        return;
      }
      if (key === "enter" && !(target instanceof HTMLButtonElement)) {
        event.preventDefault();
        // The form's first button decides (Submit on a task, Accept on a review).
        form.requestSubmit(form.querySelector("button[type=submit]"));
      }
    });

    form.querySelectorAll("textarea[name=text]").forEach((area) => {
      area.addEventListener("paste", (event) => {
        pasted += (event.clipboardData ? event.clipboardData.getData("text") : "").length;
      });
    });
    form.addEventListener("submit", () => {
      const seconds = form.querySelector("input[name=seconds_spent]");
      if (seconds) seconds.value = String(Math.round((Date.now() - started) / 1000));
      const area = form.querySelector("textarea[name=text]");
      const share = form.querySelector("input[name=pasted_share]");
      if (area && share && area.value.length) {
        share.value = String(Math.min(1, pasted / area.value.length).toFixed(3));
      }
    });
  }

  function initCountdown(element) {
    const until = Date.parse(element.dataset.leasedUntil);
    function tick() {
      const left = Math.max(0, Math.round((until - Date.now()) / 1000));
      const minutes = Math.floor(left / 60);
      const seconds = String(left % 60).padStart(2, "0");
      element.textContent = left > 0 ? `${minutes}:${seconds} left` : "lease ended";
      element.classList.toggle("late", left < 60);
      if (left > 0) setTimeout(tick, 1000);
    }
    tick();
  }

  // Word-level diff (longest common subsequence), built with text nodes only.
  function renderDiff(output, before, after) {
    const a = before.split(/(\s+)/), b = after.split(/(\s+)/);
    if (a.length * b.length > 4_000_000) { output.textContent = "(too long to diff live)"; return; }
    const rows = a.length + 1, cols = b.length + 1;
    const table = new Uint32Array(rows * cols);
    for (let i = a.length - 1; i >= 0; i--)
      for (let j = b.length - 1; j >= 0; j--)
        table[i * cols + j] = a[i] === b[j] ? table[(i + 1) * cols + j + 1] + 1
          : Math.max(table[(i + 1) * cols + j], table[i * cols + j + 1]);
    output.replaceChildren();
    let i = 0, j = 0;
    const push = (tag, text) => {
      const node = tag ? document.createElement(tag) : document.createTextNode(text);
      if (tag) node.textContent = text;
      output.appendChild(node);
    };
    while (i < a.length && j < b.length) {
      if (a[i] === b[j]) { push(null, a[i]); i++; j++; }
      else if (table[(i + 1) * cols + j] >= table[i * cols + j + 1]) { push("del", a[i]); i++; }
      else { push("ins", b[j]); j++; }
    }
    while (i < a.length) push("del", a[i++]);
    while (j < b.length) push("ins", b[j++]);
  }

  function initDiff(area) {
    const output = document.getElementById(area.dataset.diffTarget);
    const original = area.dataset.original || "";
    let timer = null;
    const update = () => renderDiff(output, original, area.value);
    area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 150); });
    update();
  }

  function initRubricEditor(editor) {
    const list = editor.querySelector("[data-rows]");
    const template = editor.querySelector("template");
    editor.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      event.preventDefault();
      const row = button.closest(".rubric-row");
      const action = button.dataset.action;
      if (action === "add") {
        list.appendChild(template.content.cloneNode(true));
        list.lastElementChild.querySelector("input").focus();
      } else if (action === "remove" && row) {
        row.remove();
      } else if (action === "up" && row && row.previousElementSibling) {
        list.insertBefore(row, row.previousElementSibling);
        button.focus();
      } else if (action === "down" && row && row.nextElementSibling) {
        list.insertBefore(row.nextElementSibling, row);
        button.focus();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-task]").forEach(initTask);
    document.querySelectorAll("[data-leased-until]").forEach(initCountdown);
    document.querySelectorAll("textarea[data-diff-target]").forEach(initDiff);
    document.querySelectorAll("[data-rubric-editor]").forEach(initRubricEditor);
    document.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  });
})();
