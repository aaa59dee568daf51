//! Arguments: [`Args`] for calls (a tuple, a `Vec`, a slice or `()`), [`Arguments`] for
//! handlers (the server's arguments, decoded on demand).

use hub_protocol::{NoArgs, Payload, RawValue};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A call's arguments: `()` for none, a tuple (`("hi",)`, `(1, 2)`), a `Vec` or a slice of
/// one type. Each element is one argument of the hub method.
pub trait Args: Send + Sync {
    /// The arguments as one serializable sequence.
    fn payload(&self) -> Payload<'_>;
}

impl Args for () {
    fn payload(&self) -> Payload<'_> {
        &NoArgs
    }
}

impl<T: Serialize + Send + Sync> Args for Vec<T> {
    fn payload(&self) -> Payload<'_> {
        self
    }
}

impl<T: Serialize + Send + Sync> Args for &[T] {
    fn payload(&self) -> Payload<'_> {
        self
    }
}

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: Serialize + Send + Sync),+> Args for ($($name,)+) {
            fn payload(&self) -> Payload<'_> {
                self
            }
        }
    };
}

tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);
tuple_args!(A, B, C, D, E, F, G);
tuple_args!(A, B, C, D, E, F, G, H);

/// The arguments of an invocation from the server, each decoded when asked for.
///
/// ```
/// # fn handler(args: hub_client::Arguments) -> Result<(), hub_client::Error> {
/// let user: String = args.get(0)?;
/// let count: u32 = args.get(1)?;
/// # let _ = (user, count); Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Arguments {
    values: Vec<RawValue>,
}

impl Arguments {
    pub(crate) fn new(values: Vec<RawValue>) -> Self {
        Arguments { values }
    }

    /// Argument `index` decoded as `T`; [`Error::Decode`] if it is missing or of another type.
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T> {
        let value = self
            .values
            .get(index)
            .ok_or_else(|| Error::Decode(format!("argument {index} is missing ({} given)", self.values.len())))?;
        value
            .decode()
            .map_err(|e| Error::Decode(format!("argument {index}: {e}")))
    }

    /// How many arguments the server sent.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the server sent no argument.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}
