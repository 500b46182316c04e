// Shared by the bank-cdc pages: JSON from the app (relative URLs), small DOM helpers.
"use strict";

async function getJson(url) {
  const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response.json();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(error) {
  const box = document.getElementById("error");
  box.textContent = `Could not load the data: ${error.message}`;
  box.hidden = false;
}

function clearError() {
  document.getElementById("error").hidden = true;
}

function when(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC") : "–";
}

const PLOT_CONFIG = {displaylogo: false, displayModeBar: false, responsive: true};
const PLOT_LAYOUT = {margin: {l: 60, r: 20, t: 36, b: 30}, height: 320, showlegend: true,
                     legend: {orientation: "h", y: -0.2, yanchor: "top", font: {size: 10}}, font: {size: 11}};
