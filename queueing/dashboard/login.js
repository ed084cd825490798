"use strict";
const params = new URLSearchParams(location.search);
if (params.has("failed")) {
  document.getElementById("failed").hidden = false;
}
if (params.has("limited")) {
  document.getElementById("limited").hidden = false;
}
