// Visible feedback on every action, and no second submit of a payment: the button is
// disabled with a spinner as soon as the form is sent.
(function () {
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) { event.preventDefault(); return; }
      if (form.dataset.sent) { event.preventDefault(); return; }
      form.dataset.sent = "1";
      form.querySelectorAll("button[data-busy]").forEach(function (button) {
        button.disabled = true;
        button.innerHTML = '<span class="spinner" aria-hidden="true"></span>' +
          button.getAttribute("data-busy");
      });
    });
  });
})();
