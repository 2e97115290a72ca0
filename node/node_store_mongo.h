#ifndef NODE_STORE_MONGO_H
#define NODE_STORE_MONGO_H

#include "node_store.h"

/*
 * The MongoDB store driver (node_store_mongo.c, docs/MONGODB.md): mongo-c-driver client
 * pool shared by the worker threads; works against MongoDB >= 5.0 (replica set, sharded
 * cluster or standalone) and FerretDB v1.24. node_store.c adds it to its driver table when
 * this header exists.
 */
extern const struct node_store_ops node_store_mongo_ops;

#endif /* NODE_STORE_MONGO_H */
