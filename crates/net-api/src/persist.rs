//! What outlives a boot within one run: the parts of the board that a reset does not clear (the
//! SDK's configuration sector in flash, where `wifi.sta.config{save=true}` and `wifi.setmode`
//! keep their settings). `device::run` makes one [`Persist`] per run and hands it to every boot;
//! a module keeps its own value in it, one per type, as it keeps per-boot state in
//! [`crate::runtime::Runtime::state`].

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

#[derive(Default)]
pub struct Persist(RefCell<HashMap<TypeId, Rc<dyn Any>>>);

impl Persist {
    /// The run's one value of type `T`, made by `init` at the first boot that asks for it.
    pub fn get<T: 'static>(&self, init: impl FnOnce() -> T) -> Rc<T> {
        let key = TypeId::of::<T>();
        let found = self.0.borrow().get(&key).cloned();
        let any = match found {
            Some(v) => v,
            None => {
                let v: Rc<dyn Any> = Rc::new(init());
                self.0.borrow_mut().entry(key).or_insert(v).clone()
            }
        };
        any.downcast()
            .unwrap_or_else(|_| unreachable!("keyed by its own type"))
    }
}
