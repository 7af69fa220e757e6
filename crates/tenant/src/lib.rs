//! Tenant identities. An [`AccountId`] or a [`MidId`] is not a string: it is a proof of
//! where the id came from. Nothing outside this crate can build one from a string except
//! through one of three doors, each named for who may use it:
//!
//! - [`mint`]: authentication, turning a credential's row into the principal's ids. Only
//!   crates that list `ami-tenant` as a dependency can reach it (the services, for
//!   `auth.rs`); the HTTP and MCP crates do not, so a handler cannot name it at all.
//! - [`AccountId::operator_chosen`]: the operator's own paths, which act on an account
//!   named in the request by design. It needs an [`Operator`], which only an authenticated
//!   operator principal carries.
//! - [`AccountId::of_row`]: the server's own background work
//!   (dispatch, the webhook worker, carrier events, sweeps), acting for the owner of a row it
//!   loaded. It needs a [`System`], which the services keep and hand only to worker code.
//!
//! [`Operator`] and [`System`] have private fields and no public constructor outside
//! [`mint`]. Store functions that act across tenants take one of them ([`CrossTenant`]).
//! The ids implement `Serialize` (responses show them) but not `Deserialize`, `FromStr`,
//! `From<String>` or `Default`: nothing parsed from a request becomes one.

use std::fmt;

use serde::Serialize;

/// A customer account's id, as authenticated or as chosen by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

/// A mobile identity's id, as authenticated (an agent token is bound to one MID) or as
/// loaded by the server's own work.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MidId(String);

/// Proof that the caller is the authenticated operator (the admin key, or the console).
#[derive(Debug, Clone)]
pub struct Operator {
    _private: (),
}

/// Proof that the caller is the server's own background work, which acts across tenants by
/// design (it claims jobs of every account).
#[derive(Debug, Clone)]
pub struct System {
    _private: (),
}

/// The holders allowed to act across tenants. Sealed: only [`Operator`] and [`System`].
pub trait CrossTenant: sealed::Sealed {}

impl CrossTenant for Operator {}
impl CrossTenant for System {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Operator {}
    impl Sealed for super::System {}
}

impl AccountId {
    /// The account an operator request names (a path or a console argument).
    pub fn operator_chosen(_operator: &Operator, id: &str) -> AccountId {
        AccountId(id.to_owned())
    }

    /// The owner of a row the server's own work loaded.
    pub fn of_row(_system: &System, id: &str) -> AccountId {
        AccountId(id.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl MidId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AccountId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MidId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for MidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for AccountId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for AccountId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<str> for MidId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for MidId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// The doors of authentication and of the server's start: only the crates that list
/// `ami-tenant` as a dependency can reach these (see the crate's documentation).
pub mod mint {
    use super::{AccountId, MidId, Operator, System};

    /// The account of a credential that authenticated.
    pub fn account_id(id: &str) -> AccountId {
        AccountId(id.to_owned())
    }

    /// The MID an agent token that authenticated is bound to.
    pub fn mid_id(id: &str) -> MidId {
        MidId(id.to_owned())
    }

    /// The operator, once its key matched (or at the console, which holds the database).
    pub fn operator() -> Operator {
        Operator { _private: () }
    }

    /// The server's own background work, made once when the services start.
    pub fn system() -> System {
        System { _private: () }
    }
}
