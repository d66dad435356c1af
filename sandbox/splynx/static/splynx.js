/* Add-on modal of action links (splynx §3.4) and the portal helper
   open_portal_dialog('add-on--action-link-modal?module=..&name=..&id=..') used by widgets. */
(function () {
  function modal() { return document.getElementById("addon-modal"); }
  function openModal(src, title, width) {
    var m = modal();
    if (!m) { window.location.href = src; return; }
    m.querySelector(".modal-title").textContent = title || "";
    m.querySelector(".modal-dialog").style.width = (width || 900) + "px";
    m.querySelector("iframe").src = src;
    m.classList.add("open");
  }
  window.open_portal_dialog = function (path) {
    openModal(path.charAt(0) === "/" ? path : "/portal/" + path, "", 900);
  };
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-addon-modal]");
    if (link) {
      event.preventDefault();
      openModal(link.getAttribute("data-addon-modal"), link.getAttribute("data-title"),
                link.getAttribute("data-width"));
      return;
    }
    if (event.target.closest(".modal-close") || event.target === modal()) {
      modal().classList.remove("open");
      modal().querySelector("iframe").src = "about:blank";
    }
    var reload = event.target.closest("[data-reload-frame]");
    if (reload) {
      var frame = document.getElementById(reload.getAttribute("data-reload-frame"));
      frame.src = frame.src;
    }
  });
})();
