// Rendering: the state becomes a lit-html template; every control carries data-action (or
// data-nav, data-form) for the controller and an accessible name. Text and attribute
// values from the network go in as bindings, which lit-html never parses as markup: the
// view escapes by construction. lit-html also keeps the DOM nodes between renders, so
// focus, carets, typed text and a dragged slider survive the level events.
import { html, nothing, render as litRender, svg, type SVGTemplateResult, type TemplateResult } from "lit-html";
import { live } from "lit-html/directives/live.js";
import { repeat } from "lit-html/directives/repeat.js";
import type { Contact, Devices, HistoryRoom, MemberInfo, Role, Settings } from "./api";
import { duration, keyLabel, linkQuality, meterPercent, participants, pathLabel, safetyCodeGroups, safetyGroups, when, whoWasThere } from "./format";
import { qrSvg } from "./qr";
import { audience, canModerate, contact, me, stage, type Loaded, type UiState } from "./state";

type View = TemplateResult | typeof nothing;

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

/** A stable hue per key, so a person keeps their avatar colour everywhere. */
function hue(key: string): number {
  let h = 0;
  for (const c of key) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

function avatar(key: string, name: string, cls = "avatar"): TemplateResult {
  return html`<div class=${cls} aria-hidden="true" style="--hue:${hue(key)}">${initials(name)}</div>`;
}

// Icons: 24×24 strokes, decorative (the control around each has a text or label).
const ICONS = {
  home: svg`<path d="M3 11.5 12 4l9 7.5"/><path d="M5 10v10h14V10"/><path d="M10 20v-5h4v5"/>`,
  history: svg`<circle cx="12" cy="12" r="8.5"/><path d="M12 7.5V12l3 2"/>`,
  settings: svg`<circle cx="12" cy="12" r="3"/><path d="M12 2.5v3M12 18.5v3M4.2 6.2l2.1 2.1M17.7 15.7l2.1 2.1M2.5 12h3M18.5 12h3M4.2 17.8l2.1-2.1M17.7 8.3l2.1-2.1"/>`,
  room: svg`<path d="M12 3a3 3 0 0 1 3 3v5a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z"/><path d="M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21"/>`,
  micOff: svg`<path d="M9 9v2a3 3 0 0 0 5.1 2.1M15 10V6a3 3 0 0 0-5.7-1.3"/><path d="M5.5 11a6.5 6.5 0 0 0 10.8 4.9M18.5 11a6.4 6.4 0 0 1-.5 2.4M12 17.5V21M3 3l18 18"/>`,
  hand: svg`<path d="M8 12V5.5a1.5 1.5 0 0 1 3 0V11M11 10V4.5a1.5 1.5 0 0 1 3 0V11M14 10.5V6a1.5 1.5 0 0 1 3 0v7.5a7 7 0 0 1-7 7h-.5a6 6 0 0 1-5-2.7L2.8 14a1.5 1.5 0 0 1 2.4-1.8L8 15"/>`,
  leave: svg`<path d="M14 4h4a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-4"/><path d="M10 16l-4-4 4-4M6 12h10"/>`,
  qr: svg`<rect x="3.5" y="3.5" width="6" height="6"/><rect x="14.5" y="3.5" width="6" height="6"/><rect x="3.5" y="14.5" width="6" height="6"/><path d="M14.5 14.5h2v2h-2zM18.5 18.5h2v2h-2zM18.5 14.5h2M14.5 18.5v2"/>`,
  copy: svg`<rect x="8.5" y="8.5" width="12" height="12" rx="2"/><path d="M15.5 8.5V5.5a2 2 0 0 0-2-2h-8a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h3"/>`,
  more: svg`<circle cx="5.5" cy="12" r="1.3"/><circle cx="12" cy="12" r="1.3"/><circle cx="18.5" cy="12" r="1.3"/>`,
  shield: svg`<path d="M12 3l8 3v6c0 4.5-3.4 8-8 9-4.6-1-8-4.5-8-9V6z"/><path d="M8.5 12l2.5 2.5 4.5-5"/>`,
  warn: svg`<path d="M12 3.5 2.5 20h19z"/><path d="M12 10v4.5M12 17.2v.3"/>`,
  close: svg`<path d="M6 6l12 12M18 6 6 18"/>`,
  back: svg`<path d="M15 5l-7 7 7 7"/>`,
} satisfies Record<string, SVGTemplateResult>;
/** An icon by name, hidden from screen readers. */
export function icon(name: keyof typeof ICONS): TemplateResult {
  return html`<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">${ICONS[name]}</svg>`;
}

const ROLE_LABEL: Record<Role, string> = { host: "Host", moderator: "Moderator", speaker: "Speaker", listener: "Listener" };

function verifiedMark(c: Contact | undefined): View {
  if (!c) return nothing;
  if (c.key_changed) return html`<span class="mark warn" role="img" aria-label="key changed" title="Their key changed since you last met: compare safety numbers again">${icon("warn")}</span>`;
  if (c.verified) return html`<span class="mark verified" role="img" aria-label="verified" title="Safety number verified">${icon("shield")}</span>`;
  return nothing;
}

function linkBars(s: UiState, m: MemberInfo): View {
  if (m.me) return nothing;
  const link = s.links[m.key];
  const q = linkQuality(link);
  const path = pathLabel(link, (k) => s.room?.members.find((x) => x.key === k)?.name);
  const label = path ? `${q.label}, ${path}` : q.label;
  return html`<span class="link q-${q.level}" role="img" aria-label=${label} title=${label} data-quality=${q.level} data-path=${link?.path ?? ""}>${[1, 2, 3].map((i) => html`<i class=${i <= q.bars ? "on" : ""}></i>`)}</span>`;
}

function personMenu(s: UiState, m: MemberInfo): TemplateResult {
  const mine = me(s);
  const vol = Math.round((s.volumes[m.key] ?? 1) * 100);
  const mod = canModerate(s) && m.role !== "host";
  const item = (op: string, text: string, danger = false) =>
    html`<button role="menuitem" class=${danger ? "danger" : ""} data-action="moderate" data-target=${m.key} data-op=${op}>${text}</button>`;
  const modItems = mod
    ? html`<div role="separator"></div>${m.role === "listener" ? item("invite_to_stage", "Invite to stage") : item("move_to_audience", "Move to audience")}${
        mine?.role === "host" && m.role !== "moderator" ? item("make_moderator", "Make moderator") : nothing
      }${m.role !== "listener" && !m.muted ? item("mute", "Mute") : nothing}${item("remove", "Remove from room", true)}`
    : nothing;
  // The slider's value follows the state only as an attribute: while dragged, the
  // input's own value leads, and the state catches up with it.
  return html`<div class="popover" id="menu-${m.key}" role="dialog" aria-label="Options for ${m.name}" data-menu=${m.key}>
    <label class="volume">
      <span class="row-between"><span>Volume</span><output>${vol}%</output></span>
      <input type="range" min="0" max="200" step="5" value=${vol} data-volume=${m.key} aria-label="Volume for ${m.name}" aria-valuetext="${vol}%">
    </label>
    <div role="menu" aria-label="Actions for ${m.name}">
      <button role="menuitem" data-action="safety" data-target=${m.key}>Compare safety numbers</button>
      ${modItems}
    </div>
  </div>`;
}

function person(s: UiState, m: MemberInfo): TemplateResult {
  const badges = [
    m.role === "host" ? html`<span class="badge role">Host</span>` : nothing,
    m.role === "moderator" ? html`<span class="badge role">Mod</span>` : nothing,
    m.muted && m.role !== "listener" ? html`<span class="badge muted" role="img" aria-label="muted" title="Muted">${icon("micOff")}</span>` : nothing,
    m.hand_raised ? html`<span class="badge hand" role="img" aria-label="hand raised" title="Hand raised">${icon("hand")}</span>` : nothing,
  ].filter((b) => b !== nothing);
  const open = s.menu === m.key;
  // A listener's promotion stays one click away for moderators; everything else is in the menu.
  const quick =
    canModerate(s) && !m.me && m.role === "listener"
      ? html`<button class="quick" data-action="moderate" data-target=${m.key} data-op="invite_to_stage">Invite to speak</button>`
      : nothing;
  const more = m.me
    ? nothing
    : html`<button class="more icon-btn" data-action="menu" data-target=${m.key} aria-haspopup="dialog" aria-expanded=${open ? "true" : "false"} aria-controls=${open ? `menu-${m.key}` : nothing} aria-label="Options for ${m.name}" title="Options">${icon("more")}</button>`;
  const you = m.me ? " (you)" : "";
  return html`<li class="person${s.speaking[m.key] ? " speaking" : ""}${open ? " open" : ""}" data-key=${m.key} aria-label="${m.name}${you}">
    ${more}
    <div class="avatar-wrap">${avatar(m.key, m.name)}${badges.length ? html`<div class="badges">${badges}</div>` : nothing}</div>
    <div class="who"><span class="name">${m.name}${you}</span>${verifiedMark(contact(s, m.key))}</div>
    <div class="meta">${linkBars(s, m)}</div>
    ${quick}
    ${open ? personMenu(s, m) : nothing}
  </li>`;
}

/** People by key, so a redraw never patches one person's card into another's. */
function people(s: UiState, list: MemberInfo[]): unknown {
  return repeat(list, (m) => m.key, (m) => person(s, m));
}

/** Whether people outside our network can reach us with the invite, in plain words. */
function reachability(s: UiState): TemplateResult {
  if (s.portMapping) {
    return html`<p class="muted" data-testid="reachability">Your router forwards ${s.portMapping} to Salon, so people outside your network can join.</p>`;
  }
  return html`<p class="muted" data-testid="reachability">Your router did not open a port for Salon (no UPnP, NAT-PMP or PCP), so only people on your network, or with a public address, may be able to join. To host for others, forward a UDP port on your router to this computer and start Salon with SALON_BIND=0.0.0.0:PORT.</p>`;
}

/**
 * The open dialog as a native <dialog>; the controller opens it with showModal(), which
 * makes the rest of the window inert. Its content sits in `.dialog-body`, so a click
 * whose target is the <dialog> itself landed on the backdrop. Its `.toasts` region is
 * the controller's: toasts outside the dialog would be inert and under the backdrop.
 */
function dialog(s: UiState): View {
  const d = s.dialog;
  if (!d) return nothing;
  let body: TemplateResult;
  if (d.kind === "invite") {
    if (!s.invite) return nothing;
    body = html`<h2 id="dialog-title">Invite people</h2>
      <p class="lede">Anyone with this invite can join. Scan it with another device or send the text over a channel you trust.</p>
      ${reachability(s)}
      <div class="qr-box" data-testid="invite-qr">${qrSvg(s.invite)}</div>
      <code class="invite-full">${s.invite}</code>
      <div class="dialog-actions">
        <button data-action="copy-invite" class="primary">${icon("copy")} Copy invite</button>
        <button data-action="revoke-invite" title="The old invite stops working; people in the room stay">Revoke invite</button>
        <button data-action="close-dialog">Close</button>
      </div>
      <p class="muted">Revoking makes a new invite: whoever holds the old one can no longer join. Removing someone does the same.</p>`;
  } else if (d.kind === "stage_invite") {
    // Decline takes the focus (autofocus, see app.ts): a stray Enter must not open the microphone.
    body = html`<h2 id="dialog-title">Invitation to speak</h2>
      <p class="lede" data-testid="stage-invite">${d.name} invites you to speak. Your microphone will turn on.</p>
      <div class="dialog-actions">
        <button class="primary" data-action="stage-answer" data-accept="true">Accept</button>
        <button data-action="stage-answer" data-accept="false" autofocus>Decline</button>
      </div>`;
  } else {
    const n = d.number;
    body = html`<h2 id="dialog-title">Compare safety numbers with ${n.name}</h2>
      <p class="lede">Read these numbers out to ${n.name} in person or on a call you trust. If they see the same digits, nobody sits between you.</p>
      <ol class="safety-number" aria-label="Safety number" data-safety-number=${n.safety_number}>${safetyGroups(n.safety_number).map((g) => html`<li>${g}</li>`)}</ol>
      <p class="verify-state ${n.verified ? "ok" : ""}" role="status">${n.verified ? html`${icon("shield")} Verified` : "Not verified yet"}</p>
      ${d.error ? html`<p class="error" role="alert">${d.error}</p>` : nothing}
      <div class="dialog-actions">
        ${
          n.verified
            ? html`<button data-action="verify" data-target=${n.key} data-on="false">Unmark</button>`
            : html`<button class="primary" data-action="verify" data-target=${n.key} data-on="true">Mark as verified</button>`
        }
        <button data-action="close-dialog">Close</button>
      </div>`;
  }
  return html`<dialog class="dialog" role="dialog" aria-modal="true" aria-labelledby="dialog-title" data-dialog=${d.kind}>
    <div class="dialog-body">
      <button class="icon-btn close" data-action="close-dialog" aria-label="Close">${icon("close")}</button>
      ${body}
    </div>
    <div class="toasts" role="status" aria-live="polite"></div>
  </dialog>`;
}

function nav(s: UiState): TemplateResult {
  const item = (screen: string, label: unknown, ic: keyof typeof ICONS, name?: string) => {
    const current = s.screen === screen;
    return html`<li><button class="nav-item${current ? " current" : ""}" data-nav=${screen} aria-current=${current ? "page" : nothing} aria-label=${name ?? nothing}>${icon(ic)}<span class="nav-label">${label}</span></button></li>`;
  };
  const room = s.room ? item("room", html`<span class="live-dot" aria-hidden="true"></span>${s.room.title}`, "room", `Room: ${s.room.title}`) : nothing;
  return html`<nav class="sidebar" aria-label="Main">
    <div class="brand"><span class="logo" aria-hidden="true"></span><span class="nav-label">Salon</span></div>
    <ul>
      ${item("home", "Home", "home")}
      ${room}
      ${item("history", "History", "history")}
      ${item("settings", "Settings", "settings")}
    </ul>
    <div class="me-card">${s.profile ? html`${avatar(s.profile.fingerprint, s.profile.name, "avatar sm")}<span class="nav-label"><strong>${s.profile.name}</strong></span>` : nothing}</div>
  </nav>`;
}

function loaded<T>(l: Loaded<T>, what: string, f: (v: T) => TemplateResult): TemplateResult {
  if (l.status === "loading") return html`<p class="muted">Loading ${what}…</p>`;
  if (l.status === "failed") return html`<p class="muted">Could not load ${what}: ${l.message}</p>`;
  return f(l.value);
}

function roomSummary(r: HistoryRoom): string {
  const names = whoWasThere(r.participants);
  return `${when(r.started_at)} · ${duration(r)} · ${names.length} ${names.length === 1 ? "person" : "people"}`;
}

function home(s: UiState, err: View): TemplateResult {
  const recent = loaded(s.recent, "recent rooms", (rooms) =>
    rooms.length
      ? html`<ul class="rows">${repeat(
          rooms.slice(0, 5),
          (r) => r.id,
          (r) =>
            html`<li><button class="row" data-action="open-history" data-room=${r.id} data-recent-room=${r.id}><span class="row-title">${r.title}</span><span class="row-meta">${roomSummary(r)}</span></button></li>`,
        )}</ul>`
      : html`<p class="muted">Rooms you join or host appear here.</p>`,
  );
  const contacts = loaded(s.contacts, "contacts", (cs) =>
    cs.length
      ? html`<ul class="rows contacts">${repeat(
          cs,
          (c) => c.key,
          (c) => html`<li class="contact" data-contact=${c.key}>${avatar(c.key, c.name, "avatar sm")}
              <span class="contact-name">${c.name} ${verifiedMark(c)}</span>
              <span class="row-meta">${c.last_seen != null ? `Last seen ${when(c.last_seen)}` : ""}</span>
              <button data-action="safety" data-target=${c.key} aria-label="Compare safety numbers with ${c.name}">Compare</button></li>`,
        )}</ul>`
      : html`<p class="muted">People you meet in rooms appear here. Compare safety numbers to mark them verified.</p>`,
  );
  const inRoom = s.room
    ? html`<div class="banner" role="status"><span class="live-dot" aria-hidden="true"></span> You are in <strong>${s.room.title}</strong><button data-nav="room" class="primary">Return to room</button></div>`
    : nothing;
  return html`<section class="page home" data-screen="home">
    <header class="page-head"><h1 tabindex="-1">Home</h1>${
      s.profile ? html`<p class="lede">Signed in as <strong>${s.profile.name}</strong> · fingerprint <code>${s.profile.fingerprint}</code></p>` : nothing
    }</header>
    ${err}
    ${inRoom}
    <div class="cards">
      <form class="card" data-form="host"><h2>Start a room</h2>
        <label>Title <input name="title" required maxlength="128" placeholder="Friday night jazz"></label>
        <button type="submit" class="primary">Start</button></form>
      <form class="card" data-form="join"><h2>Join a room</h2>
        <label>Invite <textarea name="invite" required rows="3" placeholder="salon:…"></textarea></label>
        <button type="submit" class="primary">Join</button></form>
    </div>
    <div class="cards">
      <section class="card" aria-labelledby="recent-h"><h2 id="recent-h">Recent rooms</h2>${recent}</section>
      <section class="card" aria-labelledby="contacts-h"><h2 id="contacts-h">Contacts</h2>${contacts}</section>
    </div>
  </section>`;
}

function room(s: UiState, err: View): TemplateResult {
  const r = s.room;
  if (!r) return html`<section class="page" data-screen="room"><h1 class="sr-only">Room</h1><p class="muted">Joining…</p></section>`;
  const mine = me(s);
  const hands = audience(s).filter((m) => m.hand_raised);
  const ptt = s.settings?.push_to_talk_key;
  const onStage = mine && mine.role !== "listener";
  const code = safetyCodeGroups(r.safety_code).map((g, i) => html`${i ? " / " : ""}<span class="code-group">${g}</span>`);
  return html`<section class="page room" data-screen="room">
    <header class="room-head">
      <div class="room-title"><h1>${r.title}</h1><p class="safety">Safety code <strong data-testid="safety-code" title="Read all 20 words aloud with the others: if everyone sees the same words, nobody sits in the middle">${code}</strong></p></div>
      ${
        s.invite
          ? html`<div class="invite-box"><code class="invite" data-testid="invite">${s.invite}</code>
          <button data-action="copy-invite" aria-label="Copy the invite" title="Copy the invite">${icon("copy")} Copy</button>
          <button data-action="show-invite" aria-haspopup="dialog">${icon("qr")} Invite</button></div>`
          : nothing
      }
    </header>
    ${err}
    <div class="room-body">
      <div class="people">
        <h2>Stage</h2><ul class="stage" data-testid="stage">${people(s, stage(s))}</ul>
        ${
          canModerate(s) && hands.length
            ? html`<h2>Raised hands</h2><ul class="hands">${repeat(
                hands,
                (m) => m.key,
                (m) => html`<li>${avatar(m.key, m.name, "avatar sm")}<span>${m.name}</span> <button data-action="moderate" data-target=${m.key} data-op="invite_to_stage">Invite to speak</button></li>`,
              )}</ul>`
            : nothing
        }
        <h2>Audience</h2><ul class="audience" data-testid="audience">${people(s, audience(s))}</ul>
        ${audience(s).length ? nothing : html`<p class="muted empty">Nobody in the audience yet.${s.invite ? " Share the invite to bring people in." : ""}</p>`}
      </div>
      <aside class="chat" aria-label="Chat">
        <h2>Chat</h2>
        <div class="lines" role="log" aria-label="Chat messages" data-testid="chat"><ol>${s.chat.map((c) => html`<li class=${c.from === mine?.key ? "mine" : nothing}><strong>${c.name}</strong> ${c.text}</li>`)}</ol></div>
        <form data-form="chat"><label class="sr-only" for="chat-text">Message</label><input id="chat-text" name="text" maxlength="2000" autocomplete="off" placeholder="Say something"><button type="submit">Send</button></form>
      </aside>
    </div>
    <div class="controls" role="toolbar" aria-label="My controls">
      ${
        onStage
          ? html`<button data-action="mute" class=${mine.muted ? "" : "live"} aria-pressed=${mine.muted ? "true" : "false"} aria-keyshortcuts="M">${icon(mine.muted ? "micOff" : "room")} ${mine.muted ? "Unmute" : "Mute"}</button>`
          : nothing
      }
      ${onStage && ptt ? html`<span class="ptt-hint">Hold <kbd>${keyLabel(ptt)}</kbd> to talk</span>` : nothing}
      ${
        mine && mine.role === "listener"
          ? html`<button data-action="hand" aria-pressed=${mine.hand_raised ? "true" : "false"} aria-keyshortcuts="H">${icon("hand")} ${mine.hand_raised ? "Lower hand" : "Raise hand"}</button>`
          : nothing
      }
      <button data-action="leave" class="danger">${icon("leave")} Leave</button>
      ${mine?.role === "host" ? html`<button data-action="end" class="danger">End room</button>` : nothing}
    </div>
  </section>`;
}

function historyList(s: UiState): TemplateResult {
  const h = s.history;
  const rows = repeat(
    h.rooms,
    (r) => r.id,
    (r) => html`<li><button class="history-row" data-history-room=${r.id} data-action="open-history" data-room=${r.id}>
        <span class="h-main"><span class="h-title">${r.title}</span>${r.hosted ? html`<span class="badge role">Hosted</span>` : nothing}</span>
        <span class="h-date">${when(r.started_at)}</span>
        <span class="h-duration">${duration(r)}</span>
        <span class="h-who">${whoWasThere(r.participants).join(", ")}</span>
        <span class="h-count">${r.message_count} ${r.message_count === 1 ? "message" : "messages"}</span>
      </button></li>`,
  );
  const empty = !h.loading && !h.error && !h.rooms.length ? html`<p class="muted">No rooms yet. Rooms you host or join are kept here, encrypted, on this computer only.</p>` : nothing;
  return html`<section class="page history" data-screen="history">
    <header class="page-head"><h1 tabindex="-1">History</h1><p class="lede">Rooms you hosted or joined, kept encrypted on this computer only.</p></header>
    ${h.error ? html`<p class="error" role="alert">${h.error}</p>` : nothing}
    ${h.rooms.length ? html`<ul class="history-list" aria-label="Past rooms">${rows}</ul>` : nothing}
    ${empty}
    ${h.loading ? html`<p class="muted">Loading…</p>` : h.more ? html`<button class="load-more" data-action="history-more">Load more</button>` : nothing}
  </section>`;
}

function historyDetail(s: UiState): View {
  const d = s.detail;
  if (!d) return nothing;
  const r = d.room;
  const ps = repeat(
    participants(r.participants),
    (p) => p.key,
    (p) => html`<li class="participant">${avatar(p.key, p.name, "avatar sm")}<span class="p-name">${p.name}</span><span class="badge role" data-role=${p.role}>${ROLE_LABEL[p.role]}</span>
        ${verifiedMark(contact(s, p.key))}</li>`,
  );
  const lines = repeat(
    d.messages,
    (m) => m.id,
    (m) =>
      html`<li class=${m.mine ? "mine" : ""} data-message=${m.id}><span class="line-head"><strong>${m.name}</strong> <time datetime=${new Date(m.at).toISOString()}>${when(m.at)}</time></span><span class="line-text">${m.text}</span></li>`,
  );
  return html`<section class="page history-detail" data-screen="history" data-history-detail=${r.id}>
    <button class="back" data-action="history-back">${icon("back")} All rooms</button>
    <header class="page-head"><h1 tabindex="-1">${r.title}</h1><p class="lede">${when(r.started_at)} · ${duration(r)} · ${r.hosted ? "you hosted" : "you joined"} · ${r.message_count} ${
      r.message_count === 1 ? "message" : "messages"
    }</p></header>
    <div class="detail-body">
      <section class="card" aria-labelledby="participants-h"><h2 id="participants-h">Participants</h2><ul class="participants">${ps}</ul></section>
      <section class="card transcript" aria-labelledby="transcript-h"><h2 id="transcript-h">Chat</h2>
        ${d.error ? html`<p class="error" role="alert">${d.error}</p>` : nothing}
        ${d.loading ? html`<p class="muted">Loading…</p>` : d.more ? html`<button class="load-more" data-action="chat-more">Load earlier messages</button>` : nothing}
        ${d.messages.length ? html`<ol class="lines" data-testid="history-chat">${lines}</ol>` : d.loading ? nothing : html`<p class="muted">Nobody wrote in this room.</p>`}
      </section>
    </div>
  </section>`;
}

/**
 * A device list with the chosen one selected. `selected` goes in both as the attribute
 * (the first render) and, checked against the live element, as the property: a choice the
 * node refused snaps back to the one it kept.
 */
function deviceOptions(list: string[], chosen: string | null, what: string): TemplateResult {
  const all = chosen && !list.includes(chosen) ? [...list, chosen] : list;
  const option = (value: string, label: string, on: boolean) => html`<option value=${value} ?selected=${on} .selected=${live(on)}>${label}</option>`;
  return html`${option("", `System default ${what}`, chosen == null)}${all.map((d) => option(d, `${d}${list.includes(d) ? "" : " (not connected)"}`, d === chosen))}`;
}

function settings(s: UiState): TemplateResult {
  const st: Settings | undefined = s.settings;
  const n = s.notes;
  const devs: Devices = s.devices?.status === "ok" ? s.devices.value : { inputs: [], outputs: [] };
  const level = meterPercent(s.inputDbfs);
  // Checked boxes follow the live element too, so a refused change reverts.
  const toggle = (name: "noise_suppression" | "echo_cancellation", label: string, hint: string) =>
    html`<label class="switch"><input type="checkbox" role="switch" name=${name} .checked=${live(!!st?.[name])}><span class="switch-track" aria-hidden="true"></span><span><span class="switch-label">${label}</span><small>${hint}</small></span></label>`;
  const theme = (v: string, label: string) => html`<label class="seg"><input type="radio" name="theme" value=${v} .checked=${live(st?.theme === v)}><span>${label}</span></label>`;
  const pttKey = st?.push_to_talk_key ?? null;
  const audio = st
    ? html`<form class="card" data-form="settings" aria-labelledby="audio-h">
      <h2 id="audio-h">Voice and audio</h2>
      ${n.settings ? html`<p class="error" role="alert">${n.settings}</p>` : nothing}
      ${s.devices?.status === "failed" ? html`<p class="muted">Could not list audio devices: ${s.devices.message}</p>` : nothing}
      <label>Microphone <select name="input_device">${deviceOptions(devs.inputs, st.input_device, "microphone")}</select></label>
      <div class="meter-row"><span id="mic-meter-label">Microphone level</span>
        <div class="meter" role="meter" aria-labelledby="mic-meter-label" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${level} data-testid="mic-meter"><div class="meter-fill" style="width:${level}%"></div></div>
        ${n.mic ? html`<p class="muted">The microphone test could not start: ${n.mic}</p>` : nothing}</div>
      <label>Speakers <select name="output_device">${deviceOptions(devs.outputs, st.output_device, "speakers")}</select></label>
      <div><button type="button" data-action="test-sound">Play test sound</button></div>
      ${toggle("noise_suppression", "Noise suppression", "Filters out steady background noise such as fans and keyboards.")}
      ${toggle("echo_cancellation", "Echo cancellation", "Keeps what your speakers play out of your microphone.")}
      <h3>Push to talk</h3>
      <p class="muted">When a key is set, your microphone stays muted on stage unless you hold it.</p>
      <div class="ptt-row">
        <button type="button" data-action="ptt-capture" class=${s.capturing ? "capturing" : ""} aria-pressed=${s.capturing ? "true" : "false"}>${
          s.capturing ? "Press a key… (Escape clears)" : pttKey ? html`Key: <kbd>${keyLabel(pttKey)}</kbd> · Change` : "Press a key"
        }</button>
        ${pttKey && !s.capturing ? html`<button type="button" data-action="ptt-clear">Turn off</button>` : nothing}
      </div>
      ${s.pttReach ? html`<p class="muted" data-testid="ptt-reach">${s.pttReach.note}</p>` : nothing}
      <h3 id="theme-h">Appearance</h3>
      <div class="segmented" role="radiogroup" aria-labelledby="theme-h">${theme("system", "System")}${theme("light", "Light")}${theme("dark", "Dark")}</div>
    </form>`
    : html`<section class="card"><h2>Voice and audio</h2>${n.settings ? html`<p class="error" role="alert">${n.settings}</p>` : html`<p class="muted">Loading settings…</p>`}</section>`;
  const note = (x: { ok: boolean; text: string } | undefined) => (x ? html`<p class=${x.ok ? "ok" : "error"} role=${x.ok ? "status" : "alert"}>${x.text}</p>` : nothing);
  // The strength hints have no bindings inside: the controller writes their text as the
  // user types, and lit-html leaves content it does not own alone.
  return html`<section class="page settings" data-screen="settings">
    <header class="page-head"><h1 tabindex="-1">Settings</h1></header>
    ${audio}
    <form class="card" data-form="passphrase" aria-labelledby="pass-h">
      <h2 id="pass-h">Change passphrase</h2>
      <p class="muted">Your history and identity are encrypted with it. There is no way to recover it if lost.</p>
      <label>Current passphrase <input name="old" type="password" required autocomplete="current-password"></label>
      <label>New passphrase <input name="new" type="password" required minlength="8" autocomplete="new-password" data-strength aria-describedby="new-strength"></label>
      <p class="hint" id="new-strength" data-strength-hint aria-live="polite"></p>
      <label>Repeat new passphrase <input name="confirm" type="password" required autocomplete="new-password"></label>
      ${note(n.passphrase)}
      <button type="submit" class="primary">Change passphrase</button>
    </form>
    <form class="card" data-form="backup" aria-labelledby="backup-h">
      <h2 id="backup-h">Export backup</h2>
      <p class="muted">An encrypted copy of your identity and history, opened with your passphrase.</p>
      <label>Save to (optional) <input name="path" placeholder="Default location" autocomplete="off"></label>
      ${note(n.backup)}
      <button type="submit">Export backup</button>
    </form>
  </section>`;
}

/**
 * The whole window for a state. `speech` is the current who-is-speaking sentence for the
 * screen-reader live region (the controller throttles it; see speaking.ts).
 */
export function view(s: UiState, speech = ""): TemplateResult {
  const err = s.error ? html`<p class="error" role="alert">${s.error}</p>` : nothing;
  switch (s.screen) {
    case "loading":
      // Every screen has a level-one heading to start reading from.
      return html`<section class="card onboarding"><h1 class="sr-only">Salon</h1><p>Starting…</p></section>`;
    case "create":
      return html`<section class="card onboarding" data-screen="create">
        <div class="logo big" aria-hidden="true"></div>
        <h1>Welcome to Salon</h1>
        <p class="lede">Live audio rooms where nobody in the middle can listen in. Your history stays on this computer, encrypted with your passphrase.</p>
        <form data-form="create">
          <label>Display name <input name="name" autocomplete="nickname" required maxlength="64"></label>
          <label>Passphrase <input name="passphrase" type="password" required minlength="8" data-strength aria-describedby="strength"></label>
          <p class="hint" id="strength" data-strength-hint aria-live="polite"></p>
          <label>Repeat passphrase <input name="confirm" type="password" required></label>
          ${err}
          <button type="submit" class="primary">Create my identity</button>
        </form>
      </section>`;
    case "unlock":
      return html`<section class="card onboarding" data-screen="unlock">
        <div class="logo big" aria-hidden="true"></div>
        <h1>Unlock Salon</h1>
        <form data-form="unlock">
          <label>Passphrase <input name="passphrase" type="password" required autofocus></label>
          ${err}
          <button type="submit" class="primary">Unlock</button>
        </form>
      </section>`;
    default: {
      const page =
        s.screen === "home" ? home(s, err) : s.screen === "room" ? room(s, err) : s.screen === "history" ? (s.detail ? historyDetail(s) : historyList(s)) : settings(s);
      // While a dialog is open the rest of the window is inert: no focus, no clicks, hidden
      // from screen readers. showModal() does the same; the attribute covers a webview
      // without it.
      return html`<div class="shell" ?inert=${!!s.dialog}>${nav(s)}<div class="content" id="content">${page}</div></div>
        <p class="sr-only" aria-live="polite" aria-atomic="true" data-testid="speaking-now">${speech}</p>${dialog(s)}`;
    }
  }
}

/** Renders the window for `s` into `root`, reusing the DOM nodes already there. */
export function render(s: UiState, root: HTMLElement, speech = ""): void {
  litRender(view(s, speech), root);
}
