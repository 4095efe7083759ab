"""Built-in optimisers, registered under the ``xdream.optimizers`` entry-point group."""
