//! TODO(passes helper): not yet implemented; identity for now.

use std::borrow::Cow;

pub fn apply(text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}

pub fn apply_similar(text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}
