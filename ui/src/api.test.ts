import { describe, expect, it, vi } from "vitest";

// The Tauri IPC, mocked: each test decides what the Rust side answers.
const calls: unknown[][] = [];
let answer: (cmd: string, args?: unknown) => Promise<unknown> = async () => undefined;
vi.mock("@tauri-apps/api/core", () => ({
  invoke: (cmd: string, args?: unknown) => {
    calls.push([cmd, args]);
    return answer(cmd, args);
  },
}));
vi.mock("@tauri-apps/api/event", () => ({ listen: async () => () => {} }));

const { api, errorCode, errorMessage } = await import("./api");

describe("api", () => {
  it("maps each call onto its Tauri command with named arguments", async () => {
    answer = async () => "salon:abc";
    await expect(api.hostRoom("Jazz")).resolves.toBe("salon:abc");
    expect(calls.at(-1)).toEqual(["host_room", { title: "Jazz" }]);
    await api.moderate("bb", "invite_to_stage");
    expect(calls.at(-1)).toEqual(["moderate", { target: "bb", action: "invite_to_stage" }]);
  });

  it("a wrong passphrase arrives as a typed {code, message}", async () => {
    const rejection = { code: "wrong_passphrase", message: "wrong passphrase: try again" };
    answer = () => Promise.reject(rejection);
    const e = await api.unlock("nope").then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(errorCode(e)).toBe("wrong_passphrase");
    expect(errorMessage(e)).toContain("wrong passphrase");
  });
});
