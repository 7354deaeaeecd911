// The cookie banner without a page load: the same form, sent by fetch; the server records the
// choice and sets the cookie exactly as for the form.  Anything unexpected: the form is sent as is.
(function () {
  "use strict";
  var banner = document.querySelector("[data-cookie-banner]");
  if (!banner || !window.fetch || !window.FormData) return;
  var form = banner.querySelector("form");
  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button) return;
    event.preventDefault();
    var data = new FormData(form);
    data.append(button.name, button.value);
    // getAttribute: form.action would be the buttons named "action"
    fetch(form.getAttribute("action"), { method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) {
        if (answer.status !== 204) throw new Error(String(answer.status));
        banner.remove();
      })
      .catch(function () {
        var field = document.createElement("input");
        field.type = "hidden";
        field.name = button.name;
        field.value = button.value;
        form.appendChild(field);
        form.submit();
      });
  });
})();
