// The add-on's pages inside Splynx's portal: visible feedback on every action, no second
// submit of a payment, the new-card fields when "A new card" is chosen, and the dashboard
// widget's Pay buttons opening Splynx's own add-on modal. Everything works without it too.
(function () {
  "use strict";

  // Busy buttons: disabled with a spinner as soon as the form is sent.
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) { event.preventDefault(); return; }
      if (form.dataset.sent) { event.preventDefault(); return; }
      form.dataset.sent = "1";
      form.setAttribute("aria-busy", "true");
      form.querySelectorAll("button[data-busy]").forEach(function (button) {
        button.disabled = true;
        button.innerHTML = '<span class="spinner" aria-hidden="true"></span>' +
          button.getAttribute("data-busy");
      });
    });
  });
  // Back to a page kept in the browser's memory: the form may be used again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    window.location.reload();
  });

  // "Pay with": show the new card's fields only when "A new card" is chosen.
  var newCard = document.querySelector("[data-new-card]");
  var radios = document.querySelectorAll('input[type=radio][name="card_id"]');
  function syncNewCard() {
    var chosen = document.querySelector('input[type=radio][name="card_id"]:checked');
    newCard.hidden = !!chosen && chosen.value !== "new";
  }
  if (newCard && radios.length) {
    radios.forEach(function (radio) { radio.addEventListener("change", syncNewCard); });
    syncNewCard();
  }

  // Bank accounts: the account type select shows the card or the bank part of the form,
  // and "Another bank account" its fields; the Pay button says which it pays by.
  var method = document.querySelector("[data-pay-method]");
  function syncMethod() {
    var bank = method.value === "bank";
    document.querySelectorAll("[data-method]").forEach(function (part) {
      part.hidden = part.getAttribute("data-method") !== method.value;
    });
    var button = document.querySelector(".btn-pay[data-label-bank]");
    if (button) {
      button.textContent = button.getAttribute(bank ? "data-label-bank" : "data-label-card");
    }
  }
  if (method) {
    method.addEventListener("change", syncMethod);
    syncMethod();
  }
  var newAccount = document.querySelector("[data-new-account]");
  var accountRadios = document.querySelectorAll('input[type=radio][name="bank_id"]');
  function syncNewAccount() {
    var chosen = document.querySelector('input[type=radio][name="bank_id"]:checked');
    newAccount.hidden = !!chosen && chosen.value !== "new";
  }
  if (newAccount && accountRadios.length) {
    accountRadios.forEach(function (radio) { radio.addEventListener("change", syncNewAccount); });
    syncNewAccount();
  }

  // Inside a frame of the portal (dashboard widget, modal, menu page).
  var framed = window.top !== window.self;
  var host = null;
  try { host = framed ? window.top : null; host && host.location.href; } catch (e) { host = null; }

  // Dashboard widget: the frame takes the height of its content; Pay opens Splynx's modal.
  if (document.body.classList.contains("widget")) {
    var fit = function () {
      if (window.frameElement) {
        window.frameElement.style.height = document.documentElement.scrollHeight + "px";
      }
    };
    fit();
    window.addEventListener("resize", fit);
    document.addEventListener("click", function (event) {
      var link = event.target.closest("[data-portal-dialog]");
      if (link && host && typeof host.open_portal_dialog === "function") {
        event.preventDefault();
        host.open_portal_dialog(link.getAttribute("data-portal-dialog"));
      }
    });
  }

  // "Cancel" inside a confirmation closes it.
  document.addEventListener("click", function (event) {
    var cancel = event.target.closest("[data-close-details]");
    if (cancel) {
      var details = cancel.closest("details");
      details.open = false;
      details.querySelector("summary").focus();
    }
  });

  // "Done" after a payment in a modal: reload the page behind it, which now shows Paid.
  document.addEventListener("click", function (event) {
    var done = event.target.closest("[data-top-reload]");
    if (done && host) {
      event.preventDefault();
      host.location.reload();
    }
  });
})();

// Staff pages (docs/staff.md): selects that show at once what they choose (a "Show" button
// does the same without JavaScript), and Copy buttons beside the pay links.
(function () {
  "use strict";
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var said = document.getElementById(field.id + "-copied");
    button.hidden = false;
    button.addEventListener("click", function () {
      function done(ok) {
        if (said) { said.textContent = ok ? "Copied." : "Select the link and copy it (Ctrl+C)."; }
      }
      field.focus();
      field.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () { done(true); },
          function () { done(document.execCommand && document.execCommand("copy")); });
      } else {
        done(document.execCommand && document.execCommand("copy"));
      }
    });
  });
  // A plot wider than a phone scrolls inside its box: show its latest days first.
  document.querySelectorAll("figure.chart").forEach(function (figure) {
    figure.scrollLeft = figure.scrollWidth;
  });

  // Add money with a service fee: what the amount typed comes to, by the rules of
  // services/fees.py (fee half-up to the cent, VAT half-up on the rounded fee).
  var feeNote = document.getElementById("fee-note");
  var amountInput = document.getElementById("amount");
  if (feeNote && amountInput) {
    var halfUp = function (numerator, denominator) {
      return Math.floor((2 * numerator + denominator) / (2 * denominator));
    };
    var showTotal = function () {
      var out = feeNote.querySelector(".fee-total");
      var text = amountInput.value.replace(feeNote.dataset.sign, "").replace(/[,\s]/g, "");
      var match = /^(\d{1,9})(?:\.(\d{1,2}))?$/.exec(text);
      if (!match) { out.textContent = ""; return; }
      var cents = parseInt(match[1], 10) * 100 + parseInt((match[2] || "0").padEnd(2, "0"), 10);
      var fee = halfUp(cents * parseInt(feeNote.dataset.feeRate, 10), 10000);
      var total = cents + fee + halfUp(fee * parseInt(feeNote.dataset.feeVat, 10), 10000);
      var words = (total / 100).toLocaleString("en-US", {minimumFractionDigits: 2,
                                                         maximumFractionDigits: 2});
      out.textContent = feeNote.dataset.youPay.replace("__AMOUNT__", feeNote.dataset.sign + words);
    };
    amountInput.addEventListener("input", showTotal);
    showTotal();
  }
})();
