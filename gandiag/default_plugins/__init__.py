"""Built-in plugins: ordinary plugins, registered ``trylast`` so any third-party
plugin that registers the same name replaces them."""
