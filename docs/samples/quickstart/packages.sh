# PostgreSQL 15 with its build headers, a compiler, Redis as the broker,
# and Celery with the PostgreSQL driver, all from Debian 12.
sudo apt-get update
sudo apt-get install -y postgresql-15 postgresql-server-dev-15 build-essential git \
    redis-server celery python3-celery python3-redis python3-psycopg2 python3-pip
