// Progressive enhancement only: every page works without this file.
document.documentElement.classList.add("js");

// Forms that ask before doing something destructive (data-confirm="question").
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Keyboard shortcuts, declared in the markup: the element whose aria-keyshortcuts is the
// key pressed gets the focus (a form field) or is followed (a link). Keys typed into a
// field, or with Ctrl, Alt or Cmd, are left alone. The help page lists the shortcuts.
document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey) return;
  const active = document.activeElement;
  if (active && (active.isContentEditable || active.matches("input, textarea, select"))) return;
  const target = document.querySelector(`[aria-keyshortcuts="${CSS.escape(event.key)}"]`);
  if (!target) return;
  event.preventDefault();
  if (target.matches("input, textarea, select")) {
    target.focus();
  } else {
    target.click();
  }
});

// A deleted row takes the focus with it: hand it to the next row's checkbox (or the
// previous one's, or the new-todo field) so keyboard users stay in the list.
let focusAfterDelete = null;
document.addEventListener("htmx:beforeRequest", (event) => {
  const row = event.detail.elt.closest(".todo-delete") && event.detail.elt.closest(".todo");
  if (!row) return;
  const neighbour = row.nextElementSibling || row.previousElementSibling;
  focusAfterDelete = neighbour ? neighbour.querySelector(".check").id : "id_title";
});
document.addEventListener("htmx:afterRequest", (event) => {
  const id = focusAfterDelete;
  focusAfterDelete = null;
  // htmx fires this on a parent still in the page when the form itself was swapped out.
  if (!id || document.body.contains(event.detail.elt)) return;
  const next = document.getElementById(id);
  if (next) next.focus();
});
