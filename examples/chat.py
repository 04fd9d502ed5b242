"""Talk to Switchboard with the official openai SDK: a plain answer, a stream, and embeddings.

Start the gateway first (`cargo run --release`), then, from another terminal:
    ./scripts/example.sh chat
(which sets up .venv with the SDK the first time).
Set SWITCHBOARD_KEY when config.yaml has keys; the shipped config has none.
"""

import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ.get("SWITCHBOARD_BASE_URL", "http://127.0.0.1:8080/v1"),
    api_key=os.environ.get("SWITCHBOARD_KEY", "no-key-needed"),
)

completion = client.chat.completions.create(
    model="fast", messages=[{"role": "user", "content": "What is a switchboard?"}]
)
print("answer:", completion.choices[0].message.content)
print("usage: ", completion.usage.model_dump(exclude_none=True))

print("stream:", end=" ", flush=True)
stream = client.chat.completions.create(
    model="smart",
    messages=[{"role": "user", "content": "Stream this back to me, word by word"}],
    stream=True,
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()

vectors = client.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
print("embeddings:", len(vectors.data), "vectors of", len(vectors.data[0].embedding), "dimensions")
print("models:", [m.id for m in client.models.list()])
