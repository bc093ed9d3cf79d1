//! Typed settings: declare each setting once (key, doc, type, default) with
//! [`settings!`](crate::settings!) and read it back as a Rust value.
//!
//! ```
//! use gleipnir_sdk::prelude::*;
//!
//! gleipnir_sdk::choice! {
//!     /// What to do about it.
//!     pub enum Consequence {
//!         Redact = "redact",
//!         Notify = "notify",
//!     }
//! }
//!
//! gleipnir_sdk::settings! {
//!     pub struct Config {
//!         /// Messages allowed per window.
//!         max_messages: u32 = 10, min 1, max 1000;
//!         /// Length of the window.
//!         window: Duration = Duration::from_secs(60);
//!         /// Users never acted on.
//!         allowed: Vec<User> = Vec::new();
//!         consequence: Consequence = Consequence::Redact;
//!     }
//! }
//!
//! use gleipnir_sdk::settings::Settings;
//! let specs = Config::specs();
//! assert_eq!(specs[0].key, "max-messages");
//! assert_eq!(Config::default().max_messages, 10);
//! ```

use crate::bindings::gleipnir::protection::types::{IntegerBounds, NumberBounds};
use crate::prelude::*;

/// A protection's settings as one Rust value.
pub trait Settings: Sized + Default {
    /// The spec of every setting, in declaration order.
    fn specs() -> Vec<SettingSpec>;
    /// Read the values the host passed (keys not present take their default).
    fn from_values(values: &[Setting]) -> Result<Self, String>;
}

impl Settings for () {
    fn specs() -> Vec<SettingSpec> {
        Vec::new()
    }
    fn from_values(_: &[Setting]) -> Result<Self, String> {
        Ok(())
    }
}

/// Numeric bounds given in a [`settings!`](crate::settings!) declaration.
#[derive(Debug, Default, Clone, Copy)]
pub struct Bounds {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A Rust type that can be a setting.
pub trait SettingType: Sized {
    /// The kind declared to the host.
    fn kind(bounds: Bounds) -> SettingKind;
    /// The value as the host sees it.
    fn to_value(&self) -> SettingValue;
    /// Read a value the host passed; `None` when it is of another kind.
    fn from_value(value: &SettingValue) -> Option<Self>;
}

/// A Matrix user id setting (`@user:server`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct User(pub String);

/// A Matrix room id setting (`!room` or `!room:server`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Room(pub String);

fn int_bounds(bounds: Bounds, natural_min: i64, natural_max: i64) -> SettingKind {
    let clamp = |v: f64| v.clamp(natural_min as f64, natural_max as f64) as i64;
    SettingKind::Integer(IntegerBounds {
        min: Some(bounds.min.map_or(natural_min, clamp)),
        max: Some(bounds.max.map_or(natural_max, clamp)),
    })
}

macro_rules! integer_setting {
    ($($ty:ty),*) => {$(
        impl SettingType for $ty {
            fn kind(bounds: Bounds) -> SettingKind {
                let min = <$ty>::MIN as i128;
                let max = <$ty>::MAX as i128;
                int_bounds(bounds, min.max(i64::MIN as i128) as i64, max.min(i64::MAX as i128) as i64)
            }
            fn to_value(&self) -> SettingValue {
                SettingValue::Integer(*self as i64)
            }
            fn from_value(value: &SettingValue) -> Option<Self> {
                match value {
                    SettingValue::Integer(v) => <$ty>::try_from(*v).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
integer_setting!(u8, u16, u32, u64, usize, i8, i16, i32, i64);

impl SettingType for bool {
    fn kind(_: Bounds) -> SettingKind {
        SettingKind::Flag
    }
    fn to_value(&self) -> SettingValue {
        SettingValue::Flag(*self)
    }
    fn from_value(value: &SettingValue) -> Option<Self> {
        match value {
            SettingValue::Flag(v) => Some(*v),
            _ => None,
        }
    }
}

impl SettingType for f64 {
    fn kind(bounds: Bounds) -> SettingKind {
        SettingKind::Number(NumberBounds { min: bounds.min, max: bounds.max })
    }
    fn to_value(&self) -> SettingValue {
        SettingValue::Number(*self)
    }
    fn from_value(value: &SettingValue) -> Option<Self> {
        match value {
            SettingValue::Number(v) => Some(*v),
            _ => None,
        }
    }
}

macro_rules! simple_setting {
    ($ty:ty, $kind:ident, $value:pat => $from:expr, $self_:ident => $to:expr) => {
        impl SettingType for $ty {
            fn kind(_: Bounds) -> SettingKind {
                SettingKind::$kind
            }
            fn to_value(&$self_) -> SettingValue {
                SettingValue::$kind($to)
            }
            fn from_value(value: &SettingValue) -> Option<Self> {
                match value {
                    SettingValue::$kind($value) => Some($from),
                    _ => None,
                }
            }
        }
    };
}
simple_setting!(String, Text, v => v.clone(), self => self.clone());
simple_setting!(Vec<String>, TextList, v => v.clone(), self => self.clone());
simple_setting!(User, UserId, v => User(v.clone()), self => self.0.clone());
simple_setting!(Vec<User>, UserIds, v => v.iter().cloned().map(User).collect(), self => self.iter().map(|u| u.0.clone()).collect());
simple_setting!(Room, RoomId, v => Room(v.clone()), self => self.0.clone());
simple_setting!(Vec<Room>, RoomIds, v => v.iter().cloned().map(Room).collect(), self => self.iter().map(|r| r.0.clone()).collect());
simple_setting!(Duration, Duration, v => Duration::from_millis(*v), self => u64::try_from(self.as_millis()).unwrap_or(u64::MAX));

/// The key of a field: `max_per_minute` becomes `max-per-minute`.
#[doc(hidden)]
pub fn key_of(field: &str) -> String {
    field.replace('_', "-")
}

/// Joins the lines of a doc comment into one paragraph.
#[doc(hidden)]
pub fn doc_of(lines: &[&str]) -> String {
    lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Reads one field from the values the host passed.
#[doc(hidden)]
pub fn read_field<T: SettingType>(values: &[Setting], field: &str, default: T) -> Result<T, String> {
    let key = key_of(field);
    match values.iter().find(|s| s.key == key) {
        None => Ok(default),
        Some(setting) => T::from_value(&setting.value)
            .ok_or_else(|| format!("setting `{key}`: the value {:?} does not fit this setting", setting.value)),
    }
}

/// Declares a settings struct: each field once, with its doc, type, default
/// and optional `min`/`max` bounds. Keys are the field names in kebab-case.
///
/// Field types: `bool` (flag), integers (integer), `f64` (number), `String`
/// (text), `Vec<String>` (text list), [`User`], `Vec<User>`, [`Room`],
/// `Vec<Room>`, [`Duration`](std::time::Duration), and enums declared with
/// [`choice!`](crate::choice!).
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr $(, min $min:expr)? $(, max $max:expr)? ;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl ::core::default::Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl $crate::settings::Settings for $name {
            fn specs() -> ::std::vec::Vec<$crate::prelude::SettingSpec> {
                let defaults = <Self as ::core::default::Default>::default();
                ::std::vec![$(
                    $crate::prelude::SettingSpec {
                        key: $crate::settings::key_of(stringify!($field)),
                        doc: $crate::settings::doc_of(&[$($doc),*]),
                        kind: <$ty as $crate::settings::SettingType>::kind($crate::settings::Bounds {
                            min: None $(.or(Some(($min) as f64)))?,
                            max: None $(.or(Some(($max) as f64)))?,
                        }),
                        default: $crate::settings::SettingType::to_value(&defaults.$field),
                    },
                )*]
            }

            fn from_values(
                values: &[$crate::prelude::Setting],
            ) -> ::core::result::Result<Self, ::std::string::String> {
                Ok(Self { $(
                    $field: $crate::settings::read_field::<$ty>(values, stringify!($field), $default)?,
                )* })
            }
        }
    };
}

/// Declares an enum that is a one-of-these-options setting.
#[macro_export]
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $( $(#[$vmeta])* $variant, )* }

        impl $name {
            /// The option's text, as moderators type it.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $text, )* }
            }
        }

        impl $crate::settings::SettingType for $name {
            fn kind(_: $crate::settings::Bounds) -> $crate::prelude::SettingKind {
                $crate::prelude::SettingKind::Choice(::std::vec![$( $text.to_owned() ),*])
            }
            fn to_value(&self) -> $crate::prelude::SettingValue {
                $crate::prelude::SettingValue::Choice(self.as_str().to_owned())
            }
            fn from_value(value: &$crate::prelude::SettingValue) -> ::core::option::Option<Self> {
                match value {
                    $crate::prelude::SettingValue::Choice(text) => match text.as_str() {
                        $( $text => Some(Self::$variant), )*
                        _ => None,
                    },
                    _ => None,
                }
            }
        }
    };
}
