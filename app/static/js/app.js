// Progressive enhancement only: every page works without this file.
document.documentElement.classList.add("js");

// Forms that ask before doing something destructive (data-confirm="question").
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
