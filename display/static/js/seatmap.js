// The seat map: one SVG circle per seat at its x/y from the config, coloured by a mode.
// Orientation "hall": as seen from the hall (the chair at the top, the chair's right on the viewer's
// left); "chair": as seen from the presidium (the chair at the bottom).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

class SeatMap {
  /**
   * @param {HTMLElement} container  the element the SVG fills
   * @param {{orientation?: string, labels?: boolean, onClick?: (seatId: string) => void, title?: string}} options
   */
  constructor(container, options = {}) {
    this.container = container;
    this.orientation = options.orientation || "hall";
    this.labels = Boolean(options.labels);
    this.onClick = options.onClick || null;
    this.title = options.title || "";
    this.layoutKey = "";
    this.nodes = new Map();
    this.svg = null;
  }

  /** Screen position of a seat (before scaling). */
  place(seat) {
    return this.orientation === "chair" ? [seat.x, -seat.y] : [-seat.x, seat.y];
  }

  build(seats) {
    const ids = Object.keys(seats).sort((a, b) => Number(a) - Number(b));
    const points = ids.map((id) => this.place(seats[id]));
    let minDist = Infinity;
    for (let i = 0; i < points.length; i++) {
      for (let j = i + 1; j < points.length; j++) {
        const d = Math.hypot(points[i][0] - points[j][0], points[i][1] - points[j][1]);
        if (d > 0 && d < minDist) minDist = d;
      }
    }
    if (!Number.isFinite(minDist)) minDist = 1;
    const r = minDist * 0.46;
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const pad = r * 1.6;
    const minX = Math.min(...xs) - pad;
    const minY = Math.min(...ys) - pad;
    const w = Math.max(...xs) + pad - minX;
    const h = Math.max(...ys) + pad - minY;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", `${minX} ${minY} ${w} ${h}`);
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    svg.setAttribute("class", "seatmap-svg");
    svg.setAttribute("role", "img");
    if (this.title) svg.setAttribute("aria-label", this.title);
    this.nodes.clear();
    ids.forEach((id, i) => {
      const [x, y] = points[i];
      const g = document.createElementNS(SVG_NS, "g");
      g.setAttribute("class", "seat");
      g.dataset.seat = id;
      let shape;
      if (seats[id].chair) {
        shape = document.createElementNS(SVG_NS, "rect");
        shape.setAttribute("x", x - r);
        shape.setAttribute("y", y - r);
        shape.setAttribute("width", 2 * r);
        shape.setAttribute("height", 2 * r);
        shape.setAttribute("rx", r * 0.25);
      } else {
        shape = document.createElementNS(SVG_NS, "circle");
        shape.setAttribute("cx", x);
        shape.setAttribute("cy", y);
        shape.setAttribute("r", r);
      }
      shape.setAttribute("stroke-width", r * 0.14);
      g.appendChild(shape);
      const title = document.createElementNS(SVG_NS, "title");
      g.appendChild(title);
      if (this.labels) {
        const text = document.createElementNS(SVG_NS, "text");
        text.setAttribute("x", x);
        text.setAttribute("y", y);
        text.setAttribute("font-size", r * (id.length > 2 ? 0.8 : 1.0));
        text.setAttribute("text-anchor", "middle");
        text.setAttribute("dominant-baseline", "central");
        text.textContent = id;
        g.appendChild(text);
      }
      if (this.onClick) {
        g.setAttribute("tabindex", "0");
        g.setAttribute("role", "button");
        g.addEventListener("click", () => this.onClick(id));
        g.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            this.onClick(id);
          }
        });
      }
      svg.appendChild(g);
      this.nodes.set(id, { g, title, shape, r });
    });
    this.container.replaceChildren(svg);
    this.svg = svg;
  }

  /**
   * Colour every seat.  `classify(seatId, seat)` returns {cls, label}: the CSS class (s-yes, s-no,
   * s-abstain, s-dnv, s-absent, s-voted, s-notvoted, s-present, s-offline, s-speaking, s-queued ...)
   * and the tooltip.
   */
  render(seats, classify, selected) {
    const key = Object.keys(seats)
      .sort()
      .map((id) => `${id}:${seats[id].x},${seats[id].y}`)
      .join(";");
    if (key !== this.layoutKey) {
      this.build(seats);
      this.layoutKey = key;
    }
    for (const [id, node] of this.nodes) {
      const { cls, label } = classify(id, seats[id]);
      const full = `seat ${cls}${seats[id].chair ? " chair" : ""}${selected === id ? " selected" : ""}`;
      if (node.g.getAttribute("class") !== full) {
        node.g.setAttribute("class", full);
        // the chosen seat gets a ring three times as thick (in the map's units, as the shape's own)
        node.shape.setAttribute("stroke-width", node.r * (selected === id ? 0.4 : 0.14));
      }
      if (node.title.textContent !== label) node.title.textContent = label;
    }
  }
}

window.SeatMap = SeatMap;
