// The open-latency CDF as a standalone SVG, hand-rolled: one step curve per daemon/trigger, latency
// on a log x axis (ms), fraction of trials on y. People compare curves faster than tables.

const W = 760;
const H = 440;
const M = { left: 60, right: 20, top: 50, bottom: 110 };
const COLORS = [
  '#1b9e77',
  '#66a61e',
  '#7570b3',
  '#e7298a',
  '#a6761d',
  '#1f78b4',
  '#d95f02',
  '#e6ab02',
  '#666666',
];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function latencyCdfSvg(series: Record<string, number[]>, opts: { subtitle: string }): string {
  const entries = Object.entries(series).filter(([, v]) => v.length > 0);
  const all = entries.flatMap(([, v]) => v);
  const lo = Math.max(0.1, 10 ** Math.floor(Math.log10(Math.max(0.1, Math.min(...all)))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(1, ...all)));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (ms: number) =>
    M.left + (pw * (Math.log10(Math.max(ms, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const y = (f: number) => M.top + ph * (1 - f);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="20" font-size="15" font-weight="bold">Open latency CDF: last knock / SPA packet → first SYN-ACK of the protected port</text>`,
    `<text x="${M.left}" y="38" fill="#555">${esc(opts.subtitle)}</text>`,
  ];
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    out.push(`<line x1="${x(d)}" y1="${M.top}" x2="${x(d)}" y2="${M.top + ph}" stroke="#ddd"/>`);
    out.push(
      `<text x="${x(d)}" y="${M.top + ph + 16}" text-anchor="middle">${d >= 1 ? d.toFixed(0) : d.toFixed(1)}</text>`,
    );
    for (const k of [2, 5])
      if (d * k < hi)
        out.push(
          `<line x1="${x(d * k)}" y1="${M.top}" x2="${x(d * k)}" y2="${M.top + ph}" stroke="#f0f0f0"/>`,
        );
  }
  for (const f of [0, 0.25, 0.5, 0.75, 0.9, 0.99, 1]) {
    out.push(
      `<line x1="${M.left}" y1="${y(f)}" x2="${M.left + pw}" y2="${y(f)}" stroke="${f === 0.5 || f === 0.99 ? '#ccc' : '#eee'}"/>`,
    );
    out.push(`<text x="${M.left - 6}" y="${y(f) + 4}" text-anchor="end">${f}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(
    `<text x="${M.left + pw / 2}" y="${M.top + ph + 34}" text-anchor="middle">latency (ms, log scale)</text>`,
  );
  out.push(
    `<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">fraction of trials</text>`,
  );
  entries.forEach(([name, values], i) => {
    const sorted = [...values].sort((a, b) => a - b);
    const color = COLORS[i % COLORS.length]!;
    const dashed = !name.startsWith('knockgate');
    let d = `M${x(sorted[0]!).toFixed(1)},${y(0).toFixed(1)}`;
    sorted.forEach((v, k) => {
      d += ` L${x(v).toFixed(1)},${y(k / sorted.length).toFixed(1)} L${x(v).toFixed(1)},${y((k + 1) / sorted.length).toFixed(1)}`;
    });
    out.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="${dashed ? 2.5 : 1.8}"${dashed ? ' stroke-dasharray="6 3"' : ''}/>`,
    );
    const col = i % 3;
    const row = Math.floor(i / 3);
    const lx = M.left + col * 230;
    const ly = M.top + ph + 54 + row * 18;
    out.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 22}" y2="${ly - 4}" stroke="${color}" stroke-width="2.5"${dashed ? ' stroke-dasharray="6 3"' : ''}/>`,
    );
    out.push(`<text x="${lx + 28}" y="${ly}">${esc(name)} (n=${sorted.length})</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
