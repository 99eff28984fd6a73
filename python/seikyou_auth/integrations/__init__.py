"""Ready-made glue for embedding seikyou-auth in other Python mail servers.

Each integration is its own module with its own optional extra, so importing this
package never pulls in a server framework.
"""
