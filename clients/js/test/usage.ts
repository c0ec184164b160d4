// A client written against herald.d.ts: `tsc --strict --noEmit` must accept it, and each
// `@ts-expect-error` line must be an error (else tsc fails: the declarations are too loose).
import Herald, { Gap, HeraldError, HeraldEvent, Subscription, presenceFilter } from "../herald.js";

const herald = new Herald({ url: "http://127.0.0.1:8080", token: async () => "a.jwt.token", transport: "auto" });
const sub: Subscription = herald.subscribe({
  filter: { type: ["chat.message"], room: ["lobby"] },
  since: 0,
  onEvent: (event: HeraldEvent, meta) => {
    const seq: number = meta.seq;
    const replayed: boolean = meta.replayed;
    void [event.text, seq, replayed];
  },
  onGap: (gap: Gap) => {
    const reason: "overflow" | "expired" | "reset" = gap.reason;
    void reason;
  },
  onError: (error: HeraldError) => void error.code,
});

async function read(): Promise<number> {
  let total = 0;
  for await (const { event, seq } of sub) total += seq + Object.keys(event).length;
  return total;
}
void read;

herald.on("reconnecting", (detail) => { const ms: number = detail.inMs; void ms; });
herald.on("gap", (detail) => detail.subscription.unsubscribe());
herald.on("reset", (detail) => { const lost: number = detail.lost; void lost; });
const stop: () => void = herald.on("closed", (detail) => { const retry: number | null = detail.retryInMs; void retry; });
stop();
void herald.publish({ type: "chat.message", text: "hi" }).then((answer) => answer.seq + 1);
interface ChatMessage { type: "chat.message"; room: string; text?: string }
const typed: ChatMessage = { type: "chat.message", room: "lobby" };
void herald.publish(typed);  // an application's own event type, optional fields included
void herald.presence.join("room", { nick: "ada" });
void presenceFilter("room");
const last: number | null = sub.lastSeq;
void last;

// @ts-expect-error: no such event
herald.on("reconnected", () => {});
// @ts-expect-error: a gap's reason is one of three
const wrong: Gap = { from: 1, to: 2, reason: "lost" };
void wrong;
// @ts-expect-error: publish takes an object
void herald.publish("text");
// @ts-expect-error: transports are websocket and sse
new Herald({ transport: "long-polling" });
