# mk/ops.mk - packaging and the operations kit.
#
#   make deb                 Debian packages cancelq and cancelq-sandbox into
#                            build/deb/ (dpkg-buildpackage -us -uc -b on a copy
#                            of the tree), then lintian: no errors, no warnings
#   make install             also installs the bash completion of cancelqctl
#                            (BASH_COMPLETIONDIR, default
#                            $(PREFIX)/share/bash-completion/completions)
#
# Their tests are integration scripts that `make test` runs with the rest:
# tests/integration/test_deb.sh (installs and purges the packages; root
# only), test_completion.sh, test_contrib.sh.

BASH_COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions

.PHONY: deb deb-build deb-lint install-completion

deb: bootstrap
	@sh tools/deb.sh build
	@sh tools/deb.sh lint

deb-build:
	@sh tools/deb.sh build

deb-lint:
	@sh tools/deb.sh lint

install: install-completion

install-completion:
	install -d $(DESTDIR)$(BASH_COMPLETIONDIR)
	install -m 0644 completion/cancelqctl $(DESTDIR)$(BASH_COMPLETIONDIR)/cancelqctl
