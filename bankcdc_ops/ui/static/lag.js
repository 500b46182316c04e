// CDC lag page: the stages' states and one chart per stage figure, from lag/data.
"use strict";

let range = new URLSearchParams(location.search).get("range") || "hour";

function stageCard(stage) {
  const card = el("div", {class: "stage", "data-stage": stage.stage, "data-state": stage.state,
                          "data-colour": stage.colour},
    el("div", {class: "name", text: stage.label}),
    el("div", {class: "state", text: stage.state}),
    el("div", {class: "muted", text: stage.as_of ? `as of ${when(stage.as_of)}` : stage.detail}));
  if (stage.state === "breached" && stage.run_link) {
    const first = stage.problems[0];
    card.append(el("div", {class: "muted", text: first ? `${first.subject} ${first.metric} = ${first.value}` : ""}),
                el("a", {href: stage.run_link, class: "failing-run", text: `failing run ${stage.run_id}`}));
  } else if (stage.state === "warming" && stage.problems.length) {
    card.append(el("div", {class: "muted", text: stage.problems[0].detail}));
  }
  return card;
}

function drawChart(chart) {
  const id = `chart-${chart.key}`;
  const box = document.getElementById(id);
  box.dataset.points = String(chart.points);
  box.dataset.threshold = chart.threshold === null ? "" : String(chart.threshold);
  const traces = chart.series.map(s => ({x: s.x, y: s.y, name: s.name, type: "scatter",
                                         mode: "lines+markers", marker: {size: 4}}));
  const layout = {...PLOT_LAYOUT, width: box.clientWidth || undefined, title: {text: chart.title, font: {size: 13}},
                  yaxis: {title: {text: chart.unit}, rangemode: "tozero"}, xaxis: {type: "date"}};
  if (chart.threshold !== null) {
    layout.shapes = [{type: "line", xref: "paper", x0: 0, x1: 1, y0: chart.threshold, y1: chart.threshold,
                      line: {color: "#dc2626", width: 2, dash: "dash"}}];
    layout.annotations = [{xref: "paper", x: 1, xanchor: "right", y: chart.threshold, yanchor: "bottom",
                           text: `threshold ${chart.threshold}`, showarrow: false, font: {color: "#dc2626"}}];
  }
  if (!traces.length) {
    layout.annotations = [...(layout.annotations || []), {xref: "paper", yref: "paper", x: 0.5, y: 0.5,
                          text: "no figures in this range", showarrow: false}];
  }
  Plotly.react(box, traces, layout, PLOT_CONFIG);
}

async function load() {
  try {
    const data = await getJson(`lag/data?range=${encodeURIComponent(range)}`);
    clearError();
    document.getElementById("stages").replaceChildren(...data.stages.map(stageCard));
    for (const chart of data.charts) {   // every box in the grid first, so each is drawn at its final width
      if (!document.getElementById(`chart-${chart.key}`)) {
        document.getElementById("charts").append(el("div", {class: "chart", id: `chart-${chart.key}`}));
      }
    }
    data.charts.forEach(drawChart);
    document.getElementById("as-of").textContent = `since ${when(data.since)}; times in UTC`;
    document.body.dataset.loaded = data.range;
  } catch (error) {
    showError(error);
  }
}

for (const button of document.querySelectorAll("#ranges button")) {
  button.setAttribute("aria-pressed", String(button.dataset.range === range));
  button.addEventListener("click", () => {
    range = button.dataset.range;
    for (const b of document.querySelectorAll("#ranges button")) b.setAttribute("aria-pressed", String(b === button));
    history.replaceState(null, "", `?range=${range}`);
    load();
  });
}
load();
setInterval(load, 60000);
