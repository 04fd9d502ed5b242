//! Images, audio and files from OpenAI content parts as Gemini parts: data URLs inline
//! (`inlineData`), other URLs by reference (`fileData`) with a MIME type guessed from the name.

use serde_json::Value;

use super::wire::{Blob, FileData, Part};
use crate::chat::ImageUrl;
use crate::error::ProviderError;

/// An `image_url` part.
pub fn image(image: &ImageUrl, param: &str) -> Result<Part, ProviderError> {
    if image.url.starts_with("data:") {
        let mut blob = parse_data_url(&image.url, param)?;
        blob.mime_type = crate::media::image_type(&blob.mime_type, &blob.data);
        return Ok(inline(blob));
    }
    // An image by URL with no telling extension is still an image; JPEG is the common case.
    let mime = guess_mime(&image.url).unwrap_or("image/jpeg");
    Ok(by_reference(&image.url, Some(mime)))
}

/// An `input_audio` part: `{"data": <base64>, "format": "wav" | "mp3"}`.
pub fn audio(audio: &Value, param: &str) -> Result<Part, ProviderError> {
    let data = audio.get("data").and_then(Value::as_str);
    let format = audio.get("format").and_then(Value::as_str);
    let (Some(data), Some(format)) = (data, format) else {
        return Err(ProviderError::invalid_request(
            "input_audio needs data and format",
            Some(param),
        ));
    };
    let mime = match format {
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        other => {
            return Err(ProviderError::invalid_request(
                format!("audio format {other:?} is not one Gemini reads (wav, mp3)"),
                Some(param),
            ));
        }
    };
    Ok(inline(Blob {
        mime_type: mime.into(),
        data: data.into(),
    }))
}

/// A `file` part: `file_data` (a data URL, or base64 named by `filename`) or a `file_id` that is a
/// Gemini Files API URI.
pub fn file(file: &Value, param: &str) -> Result<Part, ProviderError> {
    let filename = file.get("filename").and_then(Value::as_str);
    if let Some(data) = file.get("file_data").and_then(Value::as_str) {
        if data.starts_with("data:") {
            return Ok(inline(parse_data_url(data, param)?));
        }
        let mime = filename.and_then(guess_mime).ok_or_else(|| {
            ProviderError::invalid_request(
                "file_data without a data: URL needs a filename with a known extension",
                Some(param),
            )
        })?;
        return Ok(inline(Blob {
            mime_type: mime.into(),
            data: data.into(),
        }));
    }
    match file.get("file_id").and_then(Value::as_str) {
        Some(uri) => Ok(by_reference(
            uri,
            filename.or(Some(uri)).and_then(guess_mime),
        )),
        None => Err(ProviderError::invalid_request(
            "a file part needs file_data or file_id",
            Some(param),
        )),
    }
}

fn inline(blob: Blob) -> Part {
    Part {
        inline_data: Some(blob),
        ..Part::default()
    }
}

fn by_reference(uri: &str, mime: Option<&str>) -> Part {
    Part {
        file_data: Some(FileData {
            mime_type: mime.map(str::to_owned),
            file_uri: uri.to_owned(),
        }),
        ..Part::default()
    }
}

/// `data:<mime>;base64,<data>`; Gemini takes base64 only.
fn parse_data_url(url: &str, param: &str) -> Result<Blob, ProviderError> {
    let invalid = || {
        ProviderError::invalid_request(
            "a data URL must look like data:<mime type>;base64,<data>",
            Some(param),
        )
    };
    let rest = url.strip_prefix("data:").ok_or_else(invalid)?;
    let (header, data) = rest.split_once(',').ok_or_else(invalid)?;
    let mime = header.strip_suffix(";base64").ok_or_else(invalid)?;
    if mime.is_empty() || data.is_empty() {
        return Err(invalid());
    }
    Ok(Blob {
        mime_type: mime.to_owned(),
        data: data.to_owned(),
    })
}

/// The MIME type Gemini expects for a URL or file name's extension.
pub fn guess_mime(name: &str) -> Option<&'static str> {
    let path = name.split(['?', '#']).next().unwrap_or(name);
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "mp4" => "video/mp4",
        "mov" => "video/mov",
        "webm" => "video/webm",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_urls_go_inline_and_https_urls_by_reference() {
        let part = image(
            &ImageUrl {
                url: "data:image/png;base64,iVBORw0KGgo=".into(),
                detail: None,
            },
            "p",
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(part).unwrap(),
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
        );
        let part = image(
            &ImageUrl {
                url: "https://example.com/cat.WEBP?size=2".into(),
                detail: Some("high".into()),
            },
            "p",
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(part).unwrap(),
            json!({"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.WEBP?size=2"}})
        );
        let bad = ImageUrl {
            url: "data:image/png,plain".into(),
            detail: None,
        };
        assert_eq!(
            image(&bad, "messages[0].content[1]").unwrap_err().status,
            400
        );
    }

    #[test]
    fn audio_and_files() {
        let part = audio(&json!({"data": "UklGRg==", "format": "wav"}), "p").unwrap();
        assert_eq!(part.inline_data.unwrap().mime_type, "audio/wav");
        let part = file(&json!({"file_data": "JVBERi0=", "filename": "a.pdf"}), "p").unwrap();
        assert_eq!(part.inline_data.unwrap().mime_type, "application/pdf");
        let uri = "https://generativelanguage.googleapis.com/v1beta/files/abc";
        let part = file(&json!({"file_id": uri, "filename": "a.pdf"}), "p").unwrap();
        assert_eq!(part.file_data.unwrap().file_uri, uri);
        assert!(file(&json!({}), "p").is_err());
    }
}
