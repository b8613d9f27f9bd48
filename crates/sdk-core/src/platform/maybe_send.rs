//! The one place that knows the `Send` policy: futures and trait objects are `Send` off
//! wasm (tokio's multi-threaded runtime needs it) and not on wasm (browser futures hold
//! `JsValue`s, which are not `Send`). Everything else writes `MaybeSend` and uses
//! [`maybe_async_trait`] instead of sprinkling `cfg` through the logic.

/// `Send` off wasm, nothing on wasm.
#[cfg(not(target_family = "wasm"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_family = "wasm"))]
impl<T: Send + ?Sized> MaybeSend for T {}

/// `Send` off wasm, nothing on wasm.
#[cfg(target_family = "wasm")]
pub trait MaybeSend {}
#[cfg(target_family = "wasm")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` off wasm, nothing on wasm.
#[cfg(not(target_family = "wasm"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_family = "wasm"))]
impl<T: Sync + ?Sized> MaybeSync for T {}

/// `Sync` off wasm, nothing on wasm.
#[cfg(target_family = "wasm")]
pub trait MaybeSync {}
#[cfg(target_family = "wasm")]
impl<T: ?Sized> MaybeSync for T {}

/// `#[async_trait]` with `Send` futures off wasm, `?Send` on wasm.
#[macro_export]
macro_rules! maybe_async_trait {
    ($($item:tt)*) => {
        #[cfg_attr(not(target_family = "wasm"), $crate::async_trait::async_trait)]
        #[cfg_attr(target_family = "wasm", $crate::async_trait::async_trait(?Send))]
        $($item)*
    };
}

/// A spawned background task: `Send` off wasm, not on wasm.
#[cfg(not(target_family = "wasm"))]
pub type BoxTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// A spawned background task: `Send` off wasm, not on wasm.
#[cfg(target_family = "wasm")]
pub type BoxTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'static>>;

/// A boxed callback kept for later: `Send` off wasm, not on wasm.
#[cfg(not(target_family = "wasm"))]
pub type BoxCallback<A> = Box<dyn FnMut(&A) -> bool + Send + 'static>;

/// A boxed callback kept for later: `Send` off wasm, not on wasm.
#[cfg(target_family = "wasm")]
pub type BoxCallback<A> = Box<dyn FnMut(&A) -> bool + 'static>;

/// A boxed future owned by its caller: `Send` off wasm, not on wasm.
#[cfg(not(target_family = "wasm"))]
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// A boxed future owned by its caller: `Send` off wasm, not on wasm.
#[cfg(target_family = "wasm")]
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'static>>;
