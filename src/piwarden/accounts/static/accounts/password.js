// Password length and a rough strength as it is typed (the server says the same after submit).
(function () {
  "use strict";
  var me = document.currentScript, input = document.querySelector("[data-password-strength]");
  var out = document.querySelector("[data-strength-output]");
  if (!me || !input || !out) return;
  var min = parseInt(me.dataset.min, 10) || 15;
  function pool(v) {
    var p = 0;
    if (/[a-z]/.test(v)) p += 26;
    if (/[A-Z]/.test(v)) p += 26;
    if (/[0-9]/.test(v)) p += 10;
    if (/[!-\/:-@\[-`{-~ ]/.test(v)) p += 33;
    if (/[^\x00-\x7f]/.test(v)) p += 1000;
    return Math.max(p, 2);
  }
  input.addEventListener("input", function () {
    var v = input.value.normalize ? input.value.normalize("NFC") : input.value;
    var n = Array.from(v).length, bits = n * Math.log2(pool(v));
    var verdict = n < min ? me.dataset.labelShort : bits < 60 ? me.dataset.labelWeak : bits < 90 ? me.dataset.labelFair : me.dataset.labelStrong;
    out.hidden = n === 0;
    out.textContent = n + " " + me.dataset.labelLength + " · " + verdict;
  });
})();
