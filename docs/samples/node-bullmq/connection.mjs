// The Redis that BullMQ uses, for the producer and the worker.
export const connection = {
	host: '127.0.0.1',
	port: Number(process.env.REDIS_PORT ?? 6379),
};
