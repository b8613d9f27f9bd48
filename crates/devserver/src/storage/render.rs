//! Image transformations (`/render/image/{authenticated|public|sign}/{bucket}/{key}`),
//! as Supabase serves them through imgproxy: `width`, `height` (1 to 2500), `resize`
//! (`cover` crops to fill the box, the default; `contain` fits inside it; `fill`
//! stretches), `quality` (20 to 100, JPEG only). The `image` crate does the work, for
//! JPEG and PNG; the answer keeps the source's format (`format=origin`; WebP and AVIF
//! output are not offered) and says what was done in `x-transformations`, as Supabase.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use image::imageops::FilterType;
use image::ImageFormat;
use tokio::io::AsyncReadExt;

use super::error::StorageError;
use super::objects::Found;
use super::Ctx;

/// The largest source image transformed (as Supabase: 25 MB).
const MAX_SOURCE: i64 = 25 * 1024 * 1024;

/// What to do to an image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transform {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub resize: Resize,
    pub quality: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resize {
    #[default]
    Cover,
    Contain,
    Fill,
}

impl Resize {
    /// imgproxy's name for it, as `x-transformations` reports it.
    fn imgproxy(self) -> &'static str {
        match self {
            Resize::Cover => "fill",
            Resize::Contain => "fit",
            Resize::Fill => "force",
        }
    }
}

fn dimension(name: &str, v: &str) -> Result<u32, StorageError> {
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=2500).contains(n))
        .ok_or_else(|| StorageError::invalid(format!("{name} must be a whole number from 1 to 2500, got {v:?}")))
}

impl Transform {
    /// From query pairs (or a signed token's `transformations`, which has the same form).
    pub fn parse(pairs: &[(String, String)]) -> Result<Transform, StorageError> {
        let mut t = Transform::default();
        for (k, v) in pairs {
            match k.as_str() {
                "width" => t.width = Some(dimension("width", v)?),
                "height" => t.height = Some(dimension("height", v)?),
                "resize" => {
                    t.resize = match v.as_str() {
                        "cover" => Resize::Cover,
                        "contain" => Resize::Contain,
                        "fill" => Resize::Fill,
                        _ => return Err(StorageError::invalid(format!("resize must be cover, contain or fill, got {v:?}"))),
                    }
                }
                "quality" => {
                    t.quality = Some(
                        v.parse::<u8>()
                            .ok()
                            .filter(|q| (20..=100).contains(q))
                            .ok_or_else(|| StorageError::invalid(format!("quality must be from 20 to 100, got {v:?}")))?,
                    )
                }
                "format" if v != "origin" => {
                    return Err(StorageError::new(
                        StatusCode::BAD_REQUEST,
                        "NotSupported",
                        "Not Supported",
                        format!("format {v:?}: supasync-dev keeps the source's format (format=origin)"),
                    ))
                }
                _ => {}
            }
        }
        Ok(t)
    }

    /// The query form, for a signed token.
    pub fn to_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(w) = self.width {
            q.append_pair("width", &w.to_string());
        }
        if let Some(h) = self.height {
            q.append_pair("height", &h.to_string());
        }
        let resize = match self.resize {
            Resize::Cover => "cover",
            Resize::Contain => "contain",
            Resize::Fill => "fill",
        };
        q.append_pair("resize", resize);
        if let Some(qu) = self.quality {
            q.append_pair("quality", &qu.to_string());
        }
        q.finish()
    }

    /// `x-transformations`, in imgproxy's words.
    fn describe(&self) -> String {
        let mut parts = vec![];
        if let Some(h) = self.height {
            parts.push(format!("height:{h}"));
        }
        if let Some(w) = self.width {
            parts.push(format!("width:{w}"));
        }
        parts.push(format!("resizing_type:{}", self.resize.imgproxy()));
        if let Some(q) = self.quality {
            parts.push(format!("quality:{q}"));
        }
        parts.join(",")
    }

    /// A transform from a JSON `transform` object (`createSignedUrl`'s option).
    pub fn from_json(v: &serde_json::Value) -> Result<Option<Transform>, StorageError> {
        let Some(obj) = v.as_object().filter(|o| !o.is_empty()) else { return Ok(None) };
        let pairs: Vec<(String, String)> = obj
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect();
        Transform::parse(&pairs).map(Some)
    }
}

/// Transform an object and send the result.
pub async fn serve(ctx: &Ctx<'_>, found: &Found, t: &Transform) -> Result<Response, StorageError> {
    if found.size > MAX_SOURCE {
        return Err(StorageError::new(StatusCode::PAYLOAD_TOO_LARGE, "EntityTooLarge", "Payload too large", "the image is too large to transform (25 MB at most)"));
    }
    let mut bytes = Vec::with_capacity(found.size.max(0) as usize);
    ctx.st
        .blobs
        .open_version(&found.version)
        .await?
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| StorageError::io("cannot read the object", e))?;
    let t2 = t.clone();
    let (out, mime) = tokio::task::spawn_blocking(move || transform(&bytes, &t2))
        .await
        .map_err(|e| StorageError::internal(format!("the transformation stopped: {e}")))??;
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", mime)
        .header("content-length", out.len().to_string())
        .header("cache-control", &found.cache_control)
        .header("x-transformations", t.describe())
        .body(Body::from(out))
        .map_err(|e| StorageError::internal(e.to_string()))
}

fn transform(bytes: &[u8], t: &Transform) -> Result<(Vec<u8>, &'static str), StorageError> {
    let format = image::guess_format(bytes).map_err(|_| StorageError::invalid("the object is not an image this server can transform (JPEG or PNG)"))?;
    let mime = match format {
        ImageFormat::Jpeg => "image/jpeg",
        ImageFormat::Png => "image/png",
        _ => return Err(StorageError::invalid("the object is not an image this server can transform (JPEG or PNG)")),
    };
    let img = image::load_from_memory_with_format(bytes, format).map_err(|e| StorageError::invalid(format!("the image does not decode: {e}")))?;
    let (w0, h0) = (img.width().max(1), img.height().max(1));
    let (w, h) = match (t.width, t.height) {
        (Some(w), Some(h)) => (w, h),
        (Some(w), None) => (w, ((u64::from(h0) * u64::from(w)) / u64::from(w0)).max(1) as u32),
        (None, Some(h)) => (((u64::from(w0) * u64::from(h)) / u64::from(h0)).max(1) as u32, h),
        (None, None) => (w0, h0),
    };
    let out = match t.resize {
        Resize::Cover => img.resize_to_fill(w, h, FilterType::Triangle),
        Resize::Contain => img.resize(w, h, FilterType::Triangle),
        Resize::Fill => img.resize_exact(w, h, FilterType::Triangle),
    };
    let mut buf = std::io::Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => {
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, t.quality.unwrap_or(80));
            out.to_rgb8().write_with_encoder(enc).map_err(|e| StorageError::internal(format!("cannot encode the image: {e}")))?;
        }
        _ => out.write_to(&mut buf, ImageFormat::Png).map_err(|e| StorageError::internal(format!("cannot encode the image: {e}")))?,
    }
    Ok((buf.into_inner(), mime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn parses_and_describes_as_imgproxy() {
        let t = Transform::parse(&pairs("width=200&height=200&quality=60")).unwrap();
        assert_eq!(t.describe(), "height:200,width:200,resizing_type:fill,quality:60");
        assert_eq!(Transform::parse(&pairs(&t.to_query())).unwrap(), t);
        assert!(Transform::parse(&pairs("width=0")).is_err());
        assert!(Transform::parse(&pairs("width=9999")).is_err());
        assert!(Transform::parse(&pairs("quality=5")).is_err());
        assert!(Transform::parse(&pairs("resize=zoom")).is_err());
        assert!(Transform::parse(&pairs("format=webp")).is_err());
    }

    #[test]
    fn resizes_a_png() {
        let img = image::RgbImage::from_pixel(40, 20, image::Rgb([200, 10, 10]));
        let mut png = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img).write_to(&mut png, ImageFormat::Png).unwrap();
        let t = Transform { width: Some(10), ..Default::default() };
        let (out, mime) = transform(png.get_ref(), &t).unwrap();
        assert_eq!(mime, "image/png");
        let back = image::load_from_memory(&out).unwrap();
        assert_eq!((back.width(), back.height()), (10, 5), "the aspect ratio is kept");
        assert!(transform(b"not an image", &t).is_err());
    }
}
