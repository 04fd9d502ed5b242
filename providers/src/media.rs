//! Image types as providers accept them: OpenAI takes any `data:image/...` URL, while Anthropic,
//! Gemini and Bedrock refuse `image/jpg` (unregistered, but what many clients write) and any
//! type that does not match the bytes. One place decides the type every adapter sends.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The image types every image-taking adapter can send.
const KNOWN: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// The type to send for an image whose data URL declared `declared` and whose base64 data is
/// `data`: what the bytes say when they are a known format (a declared type can be wrong),
/// else the declared type with `image/jpg` and `image/pjpeg` spelled `image/jpeg`.
pub fn image_type(declared: &str, data: &str) -> String {
    if let Some(sniffed) = sniff(data) {
        return sniffed.to_owned();
    }
    let declared = declared.trim().to_ascii_lowercase();
    match declared.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg".to_owned(),
        _ => declared,
    }
}

/// Whether `media_type` is one every image-taking adapter accepts.
pub fn is_known_image(media_type: &str) -> bool {
    KNOWN.contains(&media_type)
}

/// The format of an image from its first bytes (PNG, JPEG, GIF, WebP signatures).
fn sniff(data: &str) -> Option<&'static str> {
    // 16 base64 characters are the 12 bytes WebP needs; they decode on their own.
    let head = STANDARD.decode(data.get(..16)?).ok()?;
    match head.as_slice() {
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &str = "/9j/4AAQSkZJRgABAQEASABIAAD";
    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB";

    #[test]
    fn the_bytes_decide_and_jpg_is_spelled_jpeg() {
        assert_eq!(image_type("image/jpg", JPEG), "image/jpeg");
        // A declared type the bytes contradict, or none at all.
        assert_eq!(image_type("image/png", JPEG), "image/jpeg");
        assert_eq!(image_type("", PNG), "image/png");
        assert_eq!(image_type("application/octet-stream", PNG), "image/png");
        // Bytes of no known format keep the declared type, spelled as providers want it.
        assert_eq!(
            image_type("image/JPG", "AAAAAAAAAAAAAAAAAAAA"),
            "image/jpeg"
        );
        assert_eq!(image_type("image/heic", "AAAA"), "image/heic");
        assert!(is_known_image("image/webp") && !is_known_image("image/jpg"));
    }
}
