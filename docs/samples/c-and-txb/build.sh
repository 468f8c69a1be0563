# The library, its header and pkg-config file (tools/install.sh does this too).
make -C client && sudo make -C client install && sudo ldconfig
cc -o producer producer.c $(pkg-config --cflags --libs tx_barrier)
cc -o worker worker.c $(pkg-config --cflags --libs tx_barrier)
