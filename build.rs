//! Turns OpenAI's `o200k_base` rank file (a base64 token and its rank per line) into the compact
//! table the token counter embeds: for each rank in order, one length byte and the token's bytes.
//!
//! Decoding at build time keeps 3.6 MB of base64 text out of the binary and out of memory.

use std::io::Write;

use base64::Engine;

const SOURCE: &str = "assets/o200k_base.tiktoken";

fn main() {
    println!("cargo::rerun-if-changed={SOURCE}");
    let text = std::fs::read_to_string(SOURCE).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let mut table = Vec::with_capacity(1 << 21);
    for (line_number, line) in text.lines().enumerate() {
        let (token, rank) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("{SOURCE}:{}: no rank", line_number + 1));
        // The counter finds a token's bytes by its rank's position in the table.
        assert_eq!(
            rank.parse::<usize>().ok(),
            Some(line_number),
            "{SOURCE}:{}: ranks must run 0, 1, 2, ... in order",
            line_number + 1
        );
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap_or_else(|e| panic!("{SOURCE}:{}: {e}", line_number + 1));
        let length = u8::try_from(bytes.len())
            .ok()
            .filter(|&l| l > 0)
            .unwrap_or_else(|| panic!("{SOURCE}:{}: a token of 1 to 255 bytes", line_number + 1));
        table.push(length);
        table.extend_from_slice(&bytes);
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::File::create(out.join("o200k_base.bin"))
        .and_then(|mut f| f.write_all(&table))
        .expect("write the token table");
}
