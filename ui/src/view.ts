// Rendering: the state becomes HTML; every control carries data-action for the
// controller and an accessible label.
import type { MemberInfo } from "./api";
import { audience, canModerate, me, stage, type UiState } from "./state";

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

/** A rough passphrase strength hint: length and variety, not a promise. */
export function strength(p: string): "weak" | "fair" | "strong" {
  const kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((r) => r.test(p)).length;
  if (p.length >= 16 || (p.length >= 12 && kinds >= 3)) return "strong";
  if (p.length >= 8) return "fair";
  return "weak";
}

function initials(name: string): string {
  return name.split(/\s+/).map((w) => w[0] ?? "").join("").slice(0, 2).toUpperCase();
}

function person(s: UiState, m: MemberInfo): string {
  const speaking = s.speaking[m.key] ? " speaking" : "";
  const link = s.links[m.key];
  const quality = link?.rtt_ms != null ? `${Math.round(link.rtt_ms)} ms` : "";
  const badges = [
    m.role === "host" ? `<span class="badge">Host</span>` : "",
    m.role === "moderator" ? `<span class="badge">Mod</span>` : "",
    m.muted ? `<span class="badge muted" aria-label="muted">Muted</span>` : "",
    m.hand_raised ? `<span class="badge hand" aria-label="hand raised">✋</span>` : "",
  ].join("");
  const mod = canModerate(s) && !m.me && m.role !== "host";
  const actions = mod
    ? `<div class="menu" role="group" aria-label="Actions for ${esc(m.name)}">
        ${m.role === "listener" ? `<button data-action="moderate" data-target="${m.key}" data-op="invite_to_stage">Invite to speak</button>` : `<button data-action="moderate" data-target="${m.key}" data-op="move_to_audience">Move to audience</button>`}
        ${m.role !== "listener" && !m.muted ? `<button data-action="moderate" data-target="${m.key}" data-op="mute">Mute</button>` : ""}
        ${me(s)?.role === "host" && m.role !== "moderator" ? `<button data-action="moderate" data-target="${m.key}" data-op="make_moderator">Make moderator</button>` : ""}
        <button class="danger" data-action="moderate" data-target="${m.key}" data-op="remove">Remove</button>
      </div>`
    : "";
  return `<li class="person${speaking}" data-key="${m.key}" aria-label="${esc(m.name)}${m.me ? " (you)" : ""}">
    <div class="avatar" aria-hidden="true">${esc(initials(m.name))}</div>
    <div class="who"><span class="name">${esc(m.name)}${m.me ? " (you)" : ""}</span>${badges}<span class="quality">${quality}</span></div>
    ${actions}
  </li>`;
}

export function render(s: UiState): string {
  const err = s.error ? `<p class="error" role="alert">${esc(s.error)}</p>` : "";
  switch (s.screen) {
    case "loading":
      return `<section class="card"><p>Starting…</p></section>`;
    case "create":
      return `<section class="card onboarding">
        <h1>Welcome to Salon</h1>
        <p class="lede">Live audio rooms where nobody in the middle can listen in. Your history stays on this computer, encrypted with your passphrase.</p>
        <form data-form="create">
          <label>Display name <input name="name" autocomplete="nickname" required maxlength="64"></label>
          <label>Passphrase <input name="passphrase" type="password" required minlength="8" data-strength></label>
          <p class="hint" id="strength" aria-live="polite"></p>
          <label>Repeat passphrase <input name="confirm" type="password" required></label>
          ${err}
          <button type="submit" class="primary">Create my identity</button>
        </form>
      </section>`;
    case "unlock":
      return `<section class="card onboarding">
        <h1>Unlock Salon</h1>
        <form data-form="unlock">
          <label>Passphrase <input name="passphrase" type="password" required autofocus></label>
          ${err}
          <button type="submit" class="primary">Unlock</button>
        </form>
      </section>`;
    case "home":
      return `<section class="home">
        <header><h1>Salon</h1><p class="lede">Signed in as <strong>${esc(s.profile?.name ?? "")}</strong> · fingerprint <code>${esc(s.profile?.fingerprint ?? "")}</code></p></header>
        ${err}
        <div class="cards">
          <form class="card" data-form="host"><h2>Start a room</h2>
            <label>Title <input name="title" required maxlength="128" placeholder="Friday night jazz"></label>
            <button type="submit" class="primary">Start</button></form>
          <form class="card" data-form="join"><h2>Join a room</h2>
            <label>Invite <textarea name="invite" required rows="3" placeholder="salon:…"></textarea></label>
            <button type="submit" class="primary">Join</button></form>
        </div>
      </section>`;
    case "room": {
      const r = s.room;
      if (!r) return `<section class="card"><p>Joining…</p></section>`;
      const mine = me(s);
      const hands = audience(s).filter((m) => m.hand_raised);
      return `<section class="room">
        <header class="room-head">
          <div><h1>${esc(r.title)}</h1><p class="safety">Safety code <strong data-testid="safety-code">${esc(r.safety_code)}</strong></p></div>
          ${s.invite ? `<button data-action="copy-invite" aria-label="Copy the invite">Copy invite</button><code class="invite" data-testid="invite">${esc(s.invite)}</code>` : ""}
        </header>
        ${err}
        <div class="room-body">
          <div class="people">
            <h2>Stage</h2><ul class="stage" data-testid="stage">${stage(s).map((m) => person(s, m)).join("")}</ul>
            ${canModerate(s) && hands.length ? `<h2>Raised hands</h2><ul class="hands">${hands.map((m) => `<li>${esc(m.name)} <button data-action="moderate" data-target="${m.key}" data-op="invite_to_stage">Invite to speak</button></li>`).join("")}</ul>` : ""}
            <h2>Audience</h2><ul class="audience" data-testid="audience">${audience(s).map((m) => person(s, m)).join("")}</ul>
          </div>
          <aside class="chat" aria-label="Chat">
            <h2>Chat</h2>
            <ol class="lines" data-testid="chat">${s.chat.map((c) => `<li><strong>${esc(c.name)}</strong> ${esc(c.text)}</li>`).join("")}</ol>
            <form data-form="chat"><label class="sr-only" for="chat-text">Message</label><input id="chat-text" name="text" maxlength="2000" autocomplete="off" placeholder="Say something"><button type="submit">Send</button></form>
          </aside>
        </div>
        <footer class="controls" role="toolbar" aria-label="My controls">
          ${mine && mine.role !== "listener" ? `<button data-action="mute" aria-pressed="${mine.muted}" aria-keyshortcuts="M">${mine.muted ? "Unmute" : "Mute"}</button>` : ""}
          ${mine && mine.role === "listener" ? `<button data-action="hand" aria-pressed="${mine.hand_raised}" aria-keyshortcuts="H">${mine.hand_raised ? "Lower hand" : "Raise hand"}</button>` : ""}
          <button data-action="leave" class="danger">Leave</button>
          ${mine?.role === "host" ? `<button data-action="end" class="danger">End room</button>` : ""}
        </footer>
      </section>`;
    }
  }
}
