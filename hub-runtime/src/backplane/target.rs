//! Who a message goes to: the targets the lifetime manager resolves locally and a backplane
//! carries to the other servers.

/// Who a message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendTarget {
    /// Every connection of the hub.
    All,
    /// Every connection but these (connection ids).
    AllExcept(Vec<String>),
    /// One connection.
    Connection(String),
    /// These connections.
    Connections(Vec<String>),
    /// A group's members.
    Group(String),
    /// Members of any of these groups, each once.
    Groups(Vec<String>),
    /// A group's members but these connections.
    GroupExcept(String, Vec<String>),
    /// Every connection of a user.
    User(String),
    /// Every connection of these users.
    Users(Vec<String>),
}
