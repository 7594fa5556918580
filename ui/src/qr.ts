// The invite as a QR code, drawn as one SVG path (dark modules on a light quiet zone,
// whatever the theme, so any camera reads it).
import { html, type TemplateResult } from "lit-html";
import qrcode from "qrcode-generator";

const QUIET = 4;

/** The code's side in modules (quiet zone included) and its dark modules as one path. */
export function qrPath(text: string): { size: number; d: string } {
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  let d = "";
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (!qr.isDark(r, c)) continue;
      // Runs of dark modules on a row become one rectangle.
      let w = 1;
      while (c + w < n && qr.isDark(r, c + w)) w++;
      d += `M${c + QUIET} ${r + QUIET}h${w}v1h-${w}z`;
      c += w - 1;
    }
  }
  return { size: n + QUIET * 2, d };
}

/** The QR code of `text` as an inline SVG with a spoken label. */
export function qrSvg(text: string, label = "QR code of the invite"): TemplateResult {
  const { size, d } = qrPath(text);
  return html`<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${size}" role="img" aria-label=${label} shape-rendering="crispEdges"><rect width=${size} height=${size} fill="#fff"/><path fill="#000" d=${d}/></svg>`;
}
