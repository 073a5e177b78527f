//! PKCS#11 URIs (RFC 7512): which token, which key object on it, and
//! optionally the module and where the PIN is.
//!
//! `pkcs11:token=ops;object=alice?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/pin`
//!
//! Path attributes (`;`-separated) choose the token and the object; query
//! attributes (`&`-separated) say how to reach them. Values are
//! percent-encoded (RFC 3986), each attribute appears at most once, and an
//! attribute airlock does not act on is refused rather than ignored: a URI
//! that names something airlock would not check must not pick another key.

use std::path::PathBuf;

use zeroize::Zeroizing;

/// The scheme, with its colon.
pub const SCHEME: &str = "pkcs11:";

/// A parsed PKCS#11 URI. Its `Display` is the path part only: the query may
/// hold a PIN (`pin-value`), which must not reach a message or a file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The path part as given, for messages.
    path_text: String,
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub slot_id: Option<u64>,
    pub slot_description: Option<String>,
    pub slot_manufacturer: Option<String>,
    /// The key object's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// The key object's id (`CKA_ID`), any bytes.
    pub id: Option<Vec<u8>>,
    /// `type=`: only `private` names a key that signs.
    pub object_type: Option<String>,
    pub module_path: Option<PathBuf>,
    pub pin_source: Option<String>,
    pub pin_value: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Uri({self})")
    }
}

impl std::fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}", self.path_text)
    }
}

/// Characters a value may hold unencoded besides RFC 3986's unreserved ones
/// (`pk11-res-avail`), and those only the path or only the query adds.
const RES_AVAIL: &[u8] = b":[]@!$'()*+,=";
const PATH_ONLY: &[u8] = b"&";
const QUERY_ONLY: &[u8] = b"/?|";

impl Pkcs11Uri {
    /// Parses `text`, which starts with `pkcs11:`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| format!("a PKCS#11 URI starts with {SCHEME}"))?;
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri { path_text: path.to_owned(), ..Pkcs11Uri::default() };
        let mut seen = Vec::new();
        for attribute in split_nonempty(path, ';') {
            let (name, value) = name_value(attribute?, PATH_ONLY, &mut seen)?;
            uri.set_path_attribute(name, value)?;
        }
        if let Some(query) = query {
            for attribute in split_nonempty(query, '&') {
                let (name, value) = name_value(attribute?, QUERY_ONLY, &mut seen)?;
                uri.set_query_attribute(name, value)?;
            }
        }
        if uri.pin_source.is_some() && uri.pin_value.is_some() {
            return Err("give pin-source or pin-value, not both".into());
        }
        Ok(uri)
    }

    fn set_path_attribute(&mut self, name: &str, value: Vec<u8>) -> Result<(), String> {
        let slot = match name {
            "id" => {
                self.id = Some(value);
                return Ok(());
            }
            "slot-id" => {
                let text = utf8(name, value)?;
                self.slot_id = Some(text.parse().map_err(|_| format!("slot-id={text} is not a number"))?);
                return Ok(());
            }
            "token" => &mut self.token,
            "manufacturer" => &mut self.manufacturer,
            "model" => &mut self.model,
            "serial" => &mut self.serial,
            "slot-description" => &mut self.slot_description,
            "slot-manufacturer" => &mut self.slot_manufacturer,
            "object" => &mut self.object,
            "type" => &mut self.object_type,
            "library-manufacturer" | "library-description" | "library-version" => {
                return Err(format!(
                    "airlock does not choose a module by {name}=; name the module with module-path= or --pkcs11-module"
                ));
            }
            other => {
                return Err(format!(
                    "unknown path attribute {other:?} (RFC 7512 has token, manufacturer, model, serial, slot-id, slot-description, slot-manufacturer, object, id, type)"
                ));
            }
        };
        *slot = Some(utf8(name, value)?);
        Ok(())
    }

    fn set_query_attribute(&mut self, name: &str, value: Vec<u8>) -> Result<(), String> {
        match name {
            "pin-value" => self.pin_value = Some(Zeroizing::new(value)),
            "pin-source" => self.pin_source = Some(utf8(name, value)?),
            "module-path" => self.module_path = Some(PathBuf::from(utf8(name, value)?)),
            "module-name" => {
                return Err("airlock does not look modules up by module-name=; give the file with module-path= or --pkcs11-module".into());
            }
            other => {
                return Err(format!(
                    "unknown query attribute {other:?} (RFC 7512 has pin-source, pin-value, module-name, module-path)"
                ));
            }
        }
        Ok(())
    }
}

/// The `;`- or `&`-separated attributes; an empty one (`;;`, a trailing `;`) is an error.
fn split_nonempty(text: &str, separator: char) -> impl Iterator<Item = Result<&str, String>> {
    let parts: Vec<&str> = if text.is_empty() { Vec::new() } else { text.split(separator).collect() };
    parts.into_iter().map(move |part| {
        if part.is_empty() { Err(format!("an empty attribute (a stray {separator:?})")) } else { Ok(part) }
    })
}

/// Splits `name=value`, refuses a repeated name, and percent-decodes the value.
fn name_value<'a>(attribute: &'a str, also: &[u8], seen: &mut Vec<&'a str>) -> Result<(&'a str, Vec<u8>), String> {
    let (name, value) =
        // Not quoted: in the query it could be a PIN typed without its name.
        attribute.split_once('=').ok_or_else(|| "an attribute has no '=' and value".to_owned())?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("{name:?} is not an attribute name"));
    }
    if seen.contains(&name) {
        return Err(format!("attribute {name} is given twice"));
    }
    seen.push(name);
    Ok((name, percent_decode(name, value, also)?))
}

fn percent_decode(name: &str, value: &str, also: &[u8]) -> Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            // Hex digits only: from_str_radix alone would take "+1".
            let digits = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            let decoded = digits.and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            out.push(decoded.ok_or_else(|| format!("{name}: '%' must be followed by two hex digits"))?);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || RES_AVAIL.contains(&b) || also.contains(&b) {
            out.push(b);
            i += 1;
        } else {
            let shown = value[i..].chars().next().unwrap_or('?');
            return Err(format!("{name}: the character {shown:?} must be percent-encoded (a space is %20)"));
        }
    }
    Ok(out)
}

fn utf8(name: &str, value: Vec<u8>) -> Result<String, String> {
    String::from_utf8(value).map_err(|_| format!("{name}= is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_7512_examples_and_ours() {
        let uri = Pkcs11Uri::parse("pkcs11:token=ops;object=alice").unwrap();
        assert_eq!(uri.token.as_deref(), Some("ops"));
        assert_eq!(uri.object.as_deref(), Some("alice"));
        assert_eq!(uri.to_string(), "pkcs11:token=ops;object=alice");

        // RFC 7512 §3 examples.
        let uri = Pkcs11Uri::parse("pkcs11:object=my-pubkey;type=public").unwrap();
        assert_eq!(uri.object_type.as_deref(), Some("public"));
        let uri = Pkcs11Uri::parse("pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=").unwrap();
        assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(uri.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(uri.id.as_deref(), Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..]));
        assert_eq!(uri.serial.as_deref(), Some(""));
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
        )
        .unwrap();
        assert_eq!(uri.pin_value.as_deref().map(Vec::as_slice), Some(&b"the-pin"[..]));
        assert!(!uri.to_string().contains("the-pin"), "the PIN never shows");
        let uri = Pkcs11Uri::parse("pkcs11:slot-description=Sun%20Metaslot;slot-id=3").unwrap();
        assert_eq!(uri.slot_id, Some(3));
        let uri = Pkcs11Uri::parse("pkcs11:token=my-token;object=my-certificate;type=cert;id=%E4%F2?pin-source=file:/etc/token&module-path=/usr/lib/libpkcs11.so").unwrap();
        assert_eq!(uri.pin_source.as_deref(), Some("file:/etc/token"));
        assert_eq!(uri.module_path, Some(PathBuf::from("/usr/lib/libpkcs11.so")));
        assert_eq!(Pkcs11Uri::parse("pkcs11:").unwrap(), Pkcs11Uri::default());
        // '&' belongs to a path value; '/' and '?' to a query value.
        assert_eq!(Pkcs11Uri::parse("pkcs11:object=a&b").unwrap().object.as_deref(), Some("a&b"));
    }

    #[test]
    fn refuses_what_it_would_not_check() {
        for (bad, says) in [
            ("pkcs11:token=a b", "percent-encoded"),
            ("pkcs11:token=a;token=b", "twice"),
            ("pkcs11:token=ops;", "empty attribute"),
            ("pkcs11:token", "no '='"),
            ("pkcs11:tokn=ops", "unknown path attribute"),
            ("pkcs11:library-manufacturer=x", "module-path"),
            ("pkcs11:token=ops?module-name=softhsm2", "module-path"),
            ("pkcs11:token=ops?pin-value=1&pin-source=/p", "not both"),
            ("pkcs11:token=ops?foo=1", "unknown query attribute"),
            ("pkcs11:token=%4", "two hex digits"),
            ("pkcs11:token=%zz", "two hex digits"),
            ("pkcs11:token=%+1", "two hex digits"),
            ("pkcs11:token=%FF", "UTF-8"),
            ("pkcs11:slot-id=x", "not a number"),
            ("pkcs11:object=a/b", "percent-encoded"),
            ("pkcs11:token=ops?pin-value=a&b", "no '='"),
            ("pkcs11:Token=ops", "not an attribute name"),
        ] {
            let err = Pkcs11Uri::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
