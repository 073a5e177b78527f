//! Keys on PKCS#11 tokens (smart cards, a `YubiKey`, HSMs, `SoftHSM2`) through
//! the `cryptoki` crate: the token signs with its Ed25519 key (`CKM_EDDSA`,
//! pure Ed25519) and the key never leaves it. ed25519 is deterministic, so
//! the signature, and the bundle, are byte for byte what the same key in a
//! file gives.
//!
//! Which module: the URI's `module-path`, else `--pkcs11-module` (or
//! `AIRLOCK_PKCS11_MODULE`). Which PIN: the URI's `pin-value` or
//! `pin-source`, else `--pin-file` (or `AIRLOCK_PIN_FILE`), else none when
//! the token has its own PIN pad (protected authentication path), else asked.

mod uri;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::RawAuthPin;

pub use self::uri::{Pkcs11Uri, SCHEME};
use super::PublicKey;
use super::signer::{Question, Secret, Unlock, check_signature, read_secret_file};
use crate::error::{Error, Result};

/// `CKA_EC_PARAMS` for Ed25519: the curve's OID 1.3.101.112, DER-encoded
/// (PKCS#11 3.0 §2.3.5), and the printable-string name some tokens use.
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

/// An Ed25519 private key object on a token, with a logged-in session.
#[derive(Clone)]
pub struct TokenKey {
    /// A session is not `Sync`; signing takes the lock.
    session: Arc<Mutex<Session>>,
    key: ObjectHandle,
    public: PublicKey,
    uri: String,
}

impl TokenKey {
    /// Finds the key `uri` names and logs in to its token.
    pub fn open(uri: &Pkcs11Uri, unlock: &Unlock<'_>) -> Result<Self> {
        let token = Token::open(uri, unlock, false)?;
        let key = token.private_key()?;
        let public = token.public_key_of(key)?;
        Ok(TokenKey { session: Arc::new(Mutex::new(token.session)), key, public, uri: uri.to_string() })
    }

    #[must_use]
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The token's Ed25519 signature over `message`, checked against the public key.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64]> {
        let session =
            self.session.lock().map_err(|_| Error::Usage(format!("{}: the token session broke", self.uri)))?;
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let signature =
            session.sign(&mechanism, self.key, message).map_err(|e| token_error(&self.uri, "signing", &e))?;
        let signature: [u8; 64] = signature.try_into().map_err(|s: Vec<u8>| {
            Error::Usage(format!("{}: the token gave a signature of {} bytes, not ed25519's 64", self.uri, s.len()))
        })?;
        if !check_signature(&self.public, message, &signature) {
            return Err(Error::Usage(format!(
                "{}: the token's signature does not verify with the public key object of the same name: the key objects do not belong together; fix them on the token",
                self.uri
            )));
        }
        Ok(signature)
    }
}

/// Makes a new Ed25519 key pair on the token `uri` names, labelled and
/// numbered as the URI says; the private key is sensitive and never
/// extractable. Returns its public key.
pub fn generate(uri: &Pkcs11Uri, unlock: &Unlock<'_>) -> Result<PublicKey> {
    let token = Token::open(uri, unlock, true)?;
    token.refuse_existing()?;
    token.require_mechanism(MechanismType::ECC_EDWARDS_KEY_PAIR_GEN, "generate Ed25519 keys")?;
    let generated = token.generate_pair(ED25519_OID).or_else(|e| match e {
        // Some tokens know the curve only by name.
        CkError::Pkcs11(
            RvError::DomainParamsInvalid | RvError::AttributeValueInvalid | RvError::CurveNotSupported,
            _,
        ) => token.generate_pair(ED25519_NAME),
        other => Err(other),
    });
    let (public, _) = generated.map_err(|e| token_error(&token.shown, "generating the key pair", &e))?;
    token.point(public)
}

/// Reads the public key of an existing key object (made by the token's own tools).
pub fn existing_public(uri: &Pkcs11Uri, unlock: &Unlock<'_>) -> Result<PublicKey> {
    TokenKey::open(uri, unlock).map(|key| key.public)
}

/// One token, found and logged in to, and what the URI asks of it.
struct Token<'a> {
    uri: &'a Pkcs11Uri,
    shown: String,
    label: String,
    session: Session,
    mechanisms: Vec<MechanismType>,
}

impl<'a> Token<'a> {
    fn open(uri: &'a Pkcs11Uri, unlock: &Unlock<'_>, write: bool) -> Result<Self> {
        let shown = uri.to_string();
        if uri.object.is_none() && uri.id.is_none() {
            return Err(Error::Usage(format!("{shown}: names no key; add object=LABEL (or id=...) to the URI")));
        }
        if let Some(kind) = uri.object_type.as_deref().filter(|t| *t != "private") {
            return Err(Error::Usage(format!(
                "{shown}: type={kind} names no private key; airlock signs with one: use type=private or leave type out"
            )));
        }
        let context = load_module(&module_path(uri, unlock, &shown)?)?;
        let (slot, info) = find_slot(&context, uri, &shown)?;
        let mechanisms = context.get_mechanism_list(slot).map_err(|e| token_error(&shown, "listing mechanisms", &e))?;
        let session = if write { context.open_rw_session(slot) } else { context.open_ro_session(slot) }
            .map_err(|e| token_error(&shown, "opening a session", &e))?;
        let token = Token { uri, shown, label: info.label().to_owned(), session, mechanisms };
        token.require_mechanism(MechanismType::EDDSA, "make Ed25519 signatures")?;
        token.login(&info, unlock)?;
        Ok(token)
    }

    fn require_mechanism(&self, mechanism: MechanismType, to: &str) -> Result<()> {
        if self.mechanisms.contains(&mechanism) {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "{}: token {:?} has no {mechanism}, so it cannot {to}; use a token (or firmware) with Ed25519 support",
            self.shown, self.label
        )))
    }

    fn login(&self, info: &TokenInfo, unlock: &Unlock<'_>) -> Result<()> {
        if !info.login_required() {
            return Ok(());
        }
        let pin = self.pin(info, unlock)?;
        let result = match &pin {
            Some(pin) => self.session.login_with_raw(UserType::User, &RawAuthPin::new(Box::new(pin.to_vec()))),
            None => self.session.login(UserType::User, None),
        };
        match result {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(Error::Usage(format!(
                "{}: token {:?} refused the PIN; check the PIN (or its file) before trying again: the token locks after a few wrong PINs",
                self.shown, self.label
            ))),
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Error::Usage(format!(
                "{}: the user PIN of token {:?} is locked; unlock it with the token's security officer tools",
                self.shown, self.label
            ))),
            Err(e) => Err(token_error(&self.shown, "logging in", &e)),
        }
    }

    /// The PIN, or `None` to let the token's own PIN pad ask for it.
    fn pin(&self, info: &TokenInfo, unlock: &Unlock<'_>) -> Result<Option<Secret>> {
        if let Some(value) = &self.uri.pin_value {
            return Ok(Some(value.clone()));
        }
        if let Some(source) = &self.uri.pin_source {
            return read_secret_file(&pin_source_path(source, &self.shown)?, "PIN file").map(Some);
        }
        if let Some(file) = &unlock.pin_file {
            return read_secret_file(file, "PIN file").map(Some);
        }
        if info.protected_authentication_path() {
            return Ok(None);
        }
        unlock.ask.ask(Question::Pin(&self.label)).map(Some)
    }

    /// The template that finds the URI's objects: its label and id.
    fn naming(&self) -> Vec<Attribute> {
        let mut template = Vec::new();
        if let Some(label) = &self.uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &self.uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        template
    }

    fn find(&self, class: ObjectClass) -> Result<Vec<ObjectHandle>> {
        let mut template = vec![Attribute::Class(class)];
        template.extend(self.naming());
        self.search(&template)
    }

    fn search(&self, template: &[Attribute]) -> Result<Vec<ObjectHandle>> {
        self.session.find_objects(template).map_err(|e| token_error(&self.shown, "searching the token", &e))
    }

    /// The one private key the URI names, checked to be an Ed25519 key that signs.
    fn private_key(&self) -> Result<ObjectHandle> {
        let key = match self.find(ObjectClass::PRIVATE_KEY)?.as_slice() {
            [] => {
                return Err(Error::Usage(format!(
                    "{}: token {:?} has no private key object so named; check object= and id= (pkcs11-tool --list-objects shows them) or make one with `airlock keygen --pkcs11 URI`",
                    self.shown, self.label
                )));
            }
            [one] => *one,
            many => {
                return Err(Error::Usage(format!(
                    "{}: {} private keys on token {:?} match; add id= to the URI to name one",
                    self.shown,
                    many.len(),
                    self.label
                )));
            }
        };
        let wanted =
            [AttributeType::KeyType, AttributeType::EcParams, AttributeType::Sign, AttributeType::AlwaysAuthenticate];
        let attributes =
            self.session.get_attributes(key, &wanted).map_err(|e| token_error(&self.shown, "reading the key", &e))?;
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(kind) if kind != KeyType::EC_EDWARDS => {
                    return Err(self.not_ed25519(&format!("a {kind} key")));
                }
                Attribute::EcParams(params) if !is_ed25519(&params) => {
                    return Err(self.not_ed25519("an Ed448 or other Edwards key"));
                }
                Attribute::Sign(false) => {
                    return Err(Error::Usage(format!("{}: the key may not sign (CKA_SIGN is false)", self.shown)));
                }
                Attribute::AlwaysAuthenticate(true) => {
                    return Err(Error::Usage(format!(
                        "{}: the key wants the PIN again for every signature (CKA_ALWAYS_AUTHENTICATE), which airlock cannot give; use a key whose PIN is asked once per session (on a YubiKey, PIV slot 9a or --pin-policy once)",
                        self.shown
                    )));
                }
                _ => {}
            }
        }
        Ok(key)
    }

    fn not_ed25519(&self, what: &str) -> Error {
        Error::Usage(format!("{}: the object is {what}; airlock signs with Ed25519 keys only", self.shown))
    }

    /// The public key of the private key `key`: from the public key object
    /// with its `CKA_ID` (tokens label the two objects differently: a
    /// `YubiKey`'s are "Private key for ..." and "Public key for ..."), else
    /// with the URI's label and id.
    fn public_key_of(&self, key: ObjectHandle) -> Result<PublicKey> {
        let attributes = self
            .session
            .get_attributes(key, &[AttributeType::Id])
            .map_err(|e| token_error(&self.shown, "reading the key", &e))?;
        let id = attributes.into_iter().find_map(|a| match a {
            Attribute::Id(id) if !id.is_empty() => Some(id),
            _ => None,
        });
        let by_id = match id {
            Some(id) => self.search(&[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id)])?,
            None => Vec::new(),
        };
        let objects = if by_id.len() == 1 { by_id } else { self.find(ObjectClass::PUBLIC_KEY)? };
        let [object] = objects.as_slice() else {
            return Err(Error::Usage(format!(
                "{}: token {:?} has {} public key objects for this key, airlock needs exactly one to know the key; put the public key on the token with the private key's id",
                self.shown,
                self.label,
                objects.len()
            )));
        };
        self.point(*object)
    }

    /// The Ed25519 key of a public key object (`CKA_EC_POINT`).
    fn point(&self, object: ObjectHandle) -> Result<PublicKey> {
        let attributes = self
            .session
            .get_attributes(object, &[AttributeType::EcPoint])
            .map_err(|e| token_error(&self.shown, "reading the public key", &e))?;
        let point = attributes.into_iter().find_map(|a| match a {
            Attribute::EcPoint(point) => Some(point),
            _ => None,
        });
        let bytes = point.as_deref().and_then(ec_point_bytes).ok_or_else(|| {
            Error::Usage(format!("{}: the public key object holds no Ed25519 point (CKA_EC_POINT)", self.shown))
        })?;
        PublicKey::from_text(&format!("{}{}", super::PUBLIC_TAG, hex::encode(bytes)), &self.shown)
    }

    fn refuse_existing(&self) -> Result<()> {
        let existing = self.search(&self.naming())?;
        if existing.is_empty() {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "{}: token {:?} already holds an object so named; choose another object= (or id=), or pass --existing to write the .pub of the key there",
            self.shown, self.label
        )))
    }

    fn generate_pair(&self, curve: &[u8]) -> std::result::Result<(ObjectHandle, ObjectHandle), CkError> {
        let mut public = vec![Attribute::Token(true), Attribute::Verify(true), Attribute::EcParams(curve.to_vec())];
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
        ];
        public.extend(self.naming());
        private.extend(self.naming());
        self.session.generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)
    }
}

fn module_path(uri: &Pkcs11Uri, unlock: &Unlock<'_>, shown: &str) -> Result<PathBuf> {
    uri.module_path.clone().or_else(|| unlock.pkcs11_module.clone()).ok_or_else(|| {
        Error::Usage(format!(
            "{shown}: which PKCS#11 module? pass --pkcs11-module FILE (e.g. /usr/lib/softhsm/libsofthsm2.so), set AIRLOCK_PKCS11_MODULE, or add ?module-path=FILE to the URI"
        ))
    })
}

fn load_module(path: &Path) -> Result<Pkcs11> {
    // Loading a module runs its code: only a file the operator named.
    if !path.is_file() {
        return Err(Error::Usage(format!("{}: no such PKCS#11 module file; check --pkcs11-module", path.display())));
    }
    let context = Pkcs11::new(path).map_err(|e| {
        Error::Usage(format!("{}: cannot load it as a PKCS#11 module: {e}; check --pkcs11-module", path.display()))
    })?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // A second key on the same module in one command.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(context),
        Err(e) => Err(token_error(&path.display().to_string(), "initializing the module", &e)),
    }
}

/// The one initialized token whose slot and token information match the URI.
fn find_slot(context: &Pkcs11, uri: &Pkcs11Uri, shown: &str) -> Result<(Slot, TokenInfo)> {
    let slots = context.get_slots_with_initialized_token().map_err(|e| token_error(shown, "listing tokens", &e))?;
    let mut present = Vec::new();
    let mut matching = Vec::new();
    for slot in slots {
        let info = context.get_token_info(slot).map_err(|e| token_error(shown, "reading a token", &e))?;
        present.push(format!("{:?}", info.label()));
        let slot_info = context.get_slot_info(slot).map_err(|e| token_error(shown, "reading a slot", &e))?;
        let fits = |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);
        if uri.slot_id.is_none_or(|id| id == slot.id())
            && fits(&uri.slot_description, slot_info.slot_description())
            && fits(&uri.slot_manufacturer, slot_info.manufacturer_id())
            && fits(&uri.token, info.label())
            && fits(&uri.manufacturer, info.manufacturer_id())
            && fits(&uri.model, info.model())
            && fits(&uri.serial, info.serial_number())
        {
            matching.push((slot, info));
        }
    }
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 if present.is_empty() => {
            Err(Error::Usage(format!("{shown}: the module sees no initialized token; insert it, or initialize it")))
        }
        0 => Err(Error::Usage(format!(
            "{shown}: no token matches (tokens present: {}); check token= in the URI",
            present.join(", ")
        ))),
        n => Err(Error::Usage(format!("{shown}: {n} tokens match; add token= or serial= to the URI to name one"))),
    }
}

/// `pin-source`: a file, as a path or a `file:` URI.
fn pin_source_path(source: &str, shown: &str) -> Result<PathBuf> {
    let path = source.strip_prefix("file://").or_else(|| source.strip_prefix("file:")).unwrap_or(source);
    if path.is_empty() || path.starts_with('|') {
        return Err(Error::Usage(format!("{shown}: pin-source must name a file (a path, or file:PATH)")));
    }
    Ok(PathBuf::from(path))
}

fn is_ed25519(params: &[u8]) -> bool {
    params == ED25519_OID || params == ED25519_NAME
}

/// `CKA_EC_POINT` of an Ed25519 key: the 32 bytes, DER-wrapped in an OCTET
/// STRING (as PKCS#11 3.0 says) or bare (as some tokens give them).
fn ec_point_bytes(point: &[u8]) -> Option<[u8; 32]> {
    let raw = match point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        _ => point,
    };
    raw.try_into().ok()
}

/// A token's error in one line: what was being done, and the PKCS#11 code.
fn token_error(shown: &str, doing: &str, e: &CkError) -> Error {
    let what = match e {
        CkError::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved, _) => {
            "the token is not present; insert it and try again".to_owned()
        }
        CkError::Pkcs11(RvError::UserNotLoggedIn, _) => "the token wants a login first; give the PIN".to_owned(),
        CkError::Pkcs11(rv, function) => format!("the token answered {rv:?} to {function}"),
        other => other.to_string(),
    };
    Error::Usage(format!("{shown}: {doing} failed: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_points_and_curves() {
        let raw = [7u8; 32];
        let mut wrapped = vec![0x04, 0x20];
        wrapped.extend(raw);
        assert_eq!(ec_point_bytes(&raw), Some(raw));
        assert_eq!(ec_point_bytes(&wrapped), Some(raw));
        assert_eq!(ec_point_bytes(&wrapped[1..]), None);
        assert!(is_ed25519(ED25519_OID) && is_ed25519(ED25519_NAME));
        assert!(!is_ed25519(&[0x06, 0x03, 0x2b, 0x65, 0x71]), "Ed448 is not Ed25519");
    }

    #[test]
    fn pin_sources_are_files() {
        assert_eq!(pin_source_path("file:/run/pin", "u").unwrap(), PathBuf::from("/run/pin"));
        assert_eq!(pin_source_path("file:///run/pin", "u").unwrap(), PathBuf::from("/run/pin"));
        assert_eq!(pin_source_path("pin.txt", "u").unwrap(), PathBuf::from("pin.txt"));
        assert!(pin_source_path("|/bin/ask", "u").is_err());
    }
}
