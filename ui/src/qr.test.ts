import { render } from "lit-html";
import qrcode from "qrcode-generator";
import { describe, expect, it } from "vitest";
import { qrPath, qrSvg } from "./qr";

const invite = "salon:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0BBQkNERUZHSElKS0xN";

function drawn(text: string): SVGSVGElement | null {
  const host = document.createElement("div");
  render(qrSvg(text), host);
  return host.querySelector("svg");
}

describe("invite QR code", () => {
  it("an invite becomes an inline SVG with dark modules on a light background", () => {
    const svg = drawn(invite);
    expect(svg).not.toBeNull();
    expect(svg?.namespaceURI).toBe("http://www.w3.org/2000/svg");
    expect(svg?.getAttribute("role")).toBe("img");
    expect(svg?.getAttribute("aria-label")).toBeTruthy();
    const d = svg?.querySelector("path")?.getAttribute("d") ?? "";
    expect(d.length).toBeGreaterThan(100);
    expect(svg?.querySelector("rect")?.getAttribute("fill")).toBe("#fff");
  });

  it("the SVG draws exactly the encoder's dark modules, with a 4-module quiet zone", () => {
    const qr = qrcode(0, "M");
    qr.addData(invite, "Byte");
    qr.make();
    const n = qr.getModuleCount();
    let dark = 0;
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) dark++;
    const svg = drawn(invite);
    expect(svg?.getAttribute("viewBox")).toBe(`0 0 ${n + 8} ${n + 8}`);
    // Each run is "M{x} {y}h{w}v1h-{w}z": the widths add up to the dark modules.
    const d = svg?.querySelector("path")?.getAttribute("d") ?? "";
    const widths = [...d.matchAll(/h(\d+)v1/g)].map((m) => Number(m[1]));
    expect(widths.reduce((a, b) => a + b, 0)).toBe(dark);
  });

  it("different invites draw different codes", () => {
    expect(qrPath(invite).d).not.toBe(qrPath(`${invite}x`).d);
  });
});
