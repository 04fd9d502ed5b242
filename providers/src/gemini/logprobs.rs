//! Gemini's `logprobsResult` as OpenAI's `logprobs`: the chosen token of each decoding step with
//! its log probability and UTF-8 bytes, and the top candidates of that step when asked for.

use serde_json::{Value, json};

use super::wire::{LogprobsResult, TokenLogprob};

/// `{"content": [...], "refusal": null}`, one entry per decoding step.
pub fn translate(result: &LogprobsResult) -> Value {
    let content: Vec<Value> = result
        .chosen_candidates
        .iter()
        .enumerate()
        .map(|(step, chosen)| {
            // OpenAI lists `top_logprobs` on every token, empty when none were asked for.
            let top: Vec<Value> = result
                .top_candidates
                .get(step)
                .map_or(&[][..], |top| &top.candidates[..])
                .iter()
                .map(token)
                .collect();
            let mut entry = token(chosen);
            entry["top_logprobs"] = Value::Array(top);
            entry
        })
        .collect();
    json!({"content": content, "refusal": null})
}

fn token(candidate: &TokenLogprob) -> Value {
    json!({
        "token": candidate.token,
        "logprob": candidate.log_probability,
        "bytes": candidate.token.as_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_become_tokens_with_bytes_and_their_top_candidates() {
        let result: LogprobsResult = serde_json::from_value(json!({
            "topCandidates": [
                {"candidates": [{"token": "Hé", "tokenId": 5, "logProbability": -0.1},
                                {"token": "Hi", "tokenId": 6, "logProbability": -2.5}]},
            ],
            "chosenCandidates": [
                {"token": "Hé", "tokenId": 5, "logProbability": -0.1},
                {"token": "!", "tokenId": 7, "logProbability": -0.02},
            ],
        }))
        .unwrap();
        assert_eq!(
            translate(&result),
            json!({"content": [
                {"token": "Hé", "logprob": -0.1, "bytes": [72, 195, 169], "top_logprobs": [
                    {"token": "Hé", "logprob": -0.1, "bytes": [72, 195, 169]},
                    {"token": "Hi", "logprob": -2.5, "bytes": [72, 105]},
                ]},
                {"token": "!", "logprob": -0.02, "bytes": [33], "top_logprobs": []},
            ], "refusal": null})
        );
    }
}
