//! A list that renders a slice at a time. async-graphql resolves a list's
//! items in one go on the async worker, so a review of thousands of values
//! would hold that worker (and every other tenant's request queued behind
//! it) for the whole list; a [`Sliced`] list hands it back between slices.
//! Its GraphQL type is the plain list's.

use std::borrow::Cow;

use async_graphql::parser::types::Field;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value, registry};

/// Items resolved before the worker is handed back.
const SLICE: usize = 64;

/// A list resolved [`SLICE`] items at a time.
pub struct Sliced<T>(pub Vec<T>);

impl<T> FromIterator<T> for Sliced<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        Self(items.into_iter().collect())
    }
}

impl<T: OutputType> OutputType for Sliced<T> {
    fn type_name() -> Cow<'static, str> {
        Vec::<T>::type_name()
    }

    fn qualified_type_name() -> String {
        Vec::<T>::qualified_type_name()
    }

    fn create_type_info(registry: &mut registry::Registry) -> String {
        Vec::<T>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let mut out = Vec::with_capacity(self.0.len());
        for (i, slice) in self.0.chunks(SLICE).enumerate() {
            if i > 0 {
                tokio::task::yield_now().await;
            }
            let items = slice.iter().enumerate().map(|(j, item)| async move {
                let ctx_idx = ctx.with_index(i * SLICE + j);
                OutputType::resolve(item, &ctx_idx, field)
                    .await
                    .map_err(|e| ctx_idx.set_error_path(e))
            });
            out.extend(futures::future::try_join_all(items).await?);
        }
        Ok(Value::List(out))
    }
}
