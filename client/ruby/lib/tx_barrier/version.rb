# frozen_string_literal: true

module TxBarrier
  # EXTVERSION of the top Makefile, as MAJOR.MINOR.0 (the release layer,
  # tools/layers/06-release.sh, checks that they agree).
  VERSION = "1.2.0"
end
