/* The track list's small helps (the page works without them):
   - on a phone, the search and the bulk form fold away so the tracks come
     first (they stay open on wider screens and without JavaScript);
   - a "select every track on this page" box for the bulk form. */
(function () {
  "use strict";
  if (window.matchMedia("(max-width: 40rem)").matches) {
    document.querySelectorAll("details[data-fold-narrow]").forEach(function (fold) {
      if (!fold.querySelector(".form-errors")) {
        fold.open = false;
      }
    });
  }
  var all = document.getElementById("select-all");
  if (!all) {
    return;
  }
  var boxes = function () {
    return document.querySelectorAll('input[name="tracks"][form="bulk-form"]');
  };
  all.hidden = false;
  all.addEventListener("change", function () {
    boxes().forEach(function (box) {
      box.checked = all.checked;
    });
  });
  document.addEventListener("change", function (event) {
    if (event.target !== all && event.target.name === "tracks") {
      var list = Array.prototype.slice.call(boxes());
      var ticked = list.filter(function (box) { return box.checked; }).length;
      all.checked = ticked === list.length && ticked > 0;
      all.indeterminate = ticked > 0 && ticked < list.length;
    }
  });
})();
