"""Tools around the pipeline, not part of what the containers run: a traffic simulator, a topic
follower and an embedded Kafka for development and tests. The services never import them."""
