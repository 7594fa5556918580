// Typed bridge to the Rust side: the commands and types of bindings.ts, which is generated
// from the Rust commands (src-tauri's bindings test fails when it is stale).
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { commands, EVENT, type ApiError, type NodeEvent } from "./bindings";

// Every data type is the generated one, under the names the UI uses.
export type {
  ApiError,
  ProfileStatus,
  ProfileInfo,
  MemberInfo,
  RoomInfo,
  PeerLevel,
  LinkInfo,
  HistoryParticipant,
  HistoryRoom,
  HistoryMessage,
  NodeEvent,
  ContactInfo as Contact,
  SafetyNumberInfo as SafetyNumber,
  DeviceList as Devices,
  Theme,
  Settings,
  TalkKeyReach,
  Role,
  Action,
} from "./bindings";

/** Every command, one-to-one with the Tauri commands (generated). */
export const api = commands;

export { EVENT };

export function onNodeEvent(handler: (e: NodeEvent) => void): Promise<UnlistenFn> {
  return listen<NodeEvent>(EVENT, (e) => handler(e.payload));
}

/** The message of anything a command rejected with. */
export function errorMessage(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as ApiError).message);
  return String(e);
}

export function errorCode(e: unknown): string | undefined {
  if (e && typeof e === "object" && "code" in e) return String((e as ApiError).code);
  return undefined;
}
