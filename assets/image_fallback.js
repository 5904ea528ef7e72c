// A broken or missing item image shows the placeholder instead (once: the placeholder itself
// never loops). Images load lazily; error events do not bubble, so listen in the capture phase.
document.addEventListener(
  "error",
  function (event) {
    var img = event.target;
    if (!img || img.tagName !== "IMG" || !img.classList.contains("card-img")) return;
    if (img.dataset.fallback === "1") return;
    img.dataset.fallback = "1";
    img.src = "/assets/image_placeholder.svg";
    img.classList.add("img-placeholder");
  },
  true
);
