"""Tools around the pipeline, not part of what the containers run: a traffic simulator
(``simulator``), a topic follower (``tail``), an embedded Kafka for development and tests
(``devkafka``), the settings tables' generator (``settings_docs``) and an offline check of the
Helm chart (``chartcheck``). The services never import them."""
