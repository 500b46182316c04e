// Fraud case queue: the marts' cases newest first, filterable by scenario, from cases/data.
"use strict";

const select = document.getElementById("scenario");
const wanted = new URLSearchParams(location.search).get("scenario") || "";

function row(c) {
  const link = el("a", {href: `case?id=${encodeURIComponent(c.detection_id)}`, text: when(c.window_end)});
  return el("tr", {"data-detection-id": c.detection_id, "data-scenario": c.scenario},
    el("td", {}, link), el("td", {text: c.scenario}), el("td", {text: String(c.card_id)}),
    el("td", {text: String(c.transactions)}), el("td", {text: c.flag_reason}));
}

async function load() {
  try {
    const data = await getJson(`cases/data?scenario=${encodeURIComponent(select.value)}`);
    clearError();
    if (select.options.length === 1) {
      for (const s of data.scenarios) select.append(el("option", {value: s, text: s.replaceAll("_", " ")}));
      select.value = wanted;
    }
    document.querySelector("#cases tbody").replaceChildren(...data.cases.map(row));
    document.getElementById("count").textContent =
      `${data.cases.length} case${data.cases.length === 1 ? "" : "s"}` +
      (data.cases.length === data.limit ? ` (the newest ${data.limit})` : "");
    document.body.dataset.loaded = select.value || "all";
  } catch (error) {
    showError(error);
  }
}

select.addEventListener("change", () => {
  history.replaceState(null, "", select.value ? `?scenario=${select.value}` : "?");
  load();
});
select.value = wanted;
load().then(() => { if (select.value !== wanted) { select.value = wanted; load(); } });
