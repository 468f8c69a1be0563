# In the application's directory.  install-links: npm copies a package
# installed from a directory, as it would a published one, and keeps it
# copied in later installs (a link would make tx-barrier use the checkout's
# own bullmq and pg).
echo 'install-links=true' >>.npmrc
npm install /path/to/tx_barrier/client/node
npm install pg bullmq ioredis          # bullmq 6 needs ioredis beside it
