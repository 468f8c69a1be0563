# From a checkout of tx_barrier: build the gem and install it.
cd /path/to/tx_barrier/client/ruby
gem build tx_barrier.gemspec            # writes tx_barrier-1.2.0.gem
gem install --local tx_barrier-1.2.0.gem
# or, with Bundler, in the application's Gemfile:
#   gem "tx_barrier", path: "/path/to/tx_barrier/client/ruby"
