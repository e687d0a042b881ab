# Network: one VPC per region, private subnets in three availability zones
# for every server, small public subnets for the API load balancer only.
# Instances have no route to the internet: S3 is reached through a gateway
# endpoint, and Cloud Map (self-registration) and CloudWatch Logs (the
# CloudWatch agent's metrics) through interface endpoints.

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 3)

  # A /16 VPC gets three /20 private subnets (10.x.0.0, 10.x.16.0,
  # 10.x.32.0) and three /24 public ones right after them (10.x.48.0 ...).
  private_cidrs = [for i in range(3) : cidrsubnet(var.vpc_cidr, 4, i)]
  public_cidrs  = [for i in range(3) : cidrsubnet(var.vpc_cidr, 8, 48 + i)]
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = "${var.name}-${var.region}" }
}

resource "aws_subnet" "private" {
  count = 3

  vpc_id            = aws_vpc.this.id
  cidr_block        = local.private_cidrs[count.index]
  availability_zone = local.azs[count.index]

  tags = { Name = "${var.name}-${var.region}-private-${count.index}" }
}

resource "aws_subnet" "public" {
  count = 3

  vpc_id            = aws_vpc.this.id
  cidr_block        = local.public_cidrs[count.index]
  availability_zone = local.azs[count.index]

  tags = { Name = "${var.name}-${var.region}-public-${count.index}" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }

  tags = { Name = "${var.name}-${var.region}-public" }
}

resource "aws_route_table_association" "public" {
  count = 3

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

# One private route table: local traffic, S3, and the peering routes that
# the root module adds towards the other regions.
resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.name}-${var.region}-private" }
}

resource "aws_route_table_association" "private" {
  count = 3

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.private.id]
}

# Cloud Map's API, for the views' and API servers' self-registration.
resource "aws_vpc_endpoint" "servicediscovery" {
  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${var.region}.servicediscovery"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
}

# CloudWatch Logs' API: the CloudWatch agent ships the scraped Prometheus
# metrics as embedded-metric-format logs (monitoring.tf).
resource "aws_vpc_endpoint" "logs" {
  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${var.region}.logs"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  private_dns_enabled = true
}
