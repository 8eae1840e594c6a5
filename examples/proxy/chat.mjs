// A chat completion through `ratelord proxy` with Node's built-in fetch: no SDK, no ratelord
// code in the client, only a base URL.
//
//   OPENAI_API_KEY=sk-... node examples/proxy/chat.mjs http://127.0.0.1:8091/openai/v1
//
// A refusal by ratelord is an ordinary 429 with Retry-After: wait that long, then try again.
const baseUrl = process.argv[2] ?? "http://127.0.0.1:8091/openai/v1";

const response = await fetch(`${baseUrl}/chat/completions`, {
  method: "POST",
  headers: {
    authorization: `Bearer ${process.env.OPENAI_API_KEY}`,
    "content-type": "application/json",
    "x-ratelord-agent": "node-fetch-example",
  },
  body: JSON.stringify({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "Say ok." }],
    max_tokens: 20,
  }),
});

if (response.status === 429) {
  const error = await response.json();
  console.log(`refused: retry after ${response.headers.get("retry-after")} s: ${error.error.message}`);
  process.exit(2);
}
const answer = await response.json();
console.log(`status ${response.status}, ${answer.usage.total_tokens} tokens`);
